"""Which callback URLs and addresses hookrelay may reach. Pure: no I/O, no clock.

Every address a callback host resolves to must be public (or inside an allowed network); the
check runs at registration and again at connect time on the resolver's answer, so DNS rebinding
meets the same rule. Which addresses are public is decided from the IANA special-purpose
registries kept as data in the package (see special_ranges), not from the interpreter's own
tables. A host that spells an IPv4 address other than as four decimal numbers (`127.1`,
`0x7f000001`, `2130706433`, `0`) is refused outright, whatever the HTTP client would make of it,
and so is a host with a colon that is no IPv6 address, or one the HTTP client (yarl) cannot
parse or reads as another host.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from yarl import URL

from hookrelay.errors import UnsafeTarget
from hookrelay.ssrf.special_ranges import IPAddress as IPAddress
from hookrelay.ssrf.special_ranges import IPNetwork as IPNetwork
from hookrelay.ssrf.special_ranges import most_specific_range

MAX_URL_LENGTH = 2048
ALLOWED_SCHEMES = frozenset({"http", "https"})

_MULTICAST = (ipaddress.ip_network("224.0.0.0/4"), ipaddress.ip_network("ff00::/8"))
# The only IPv6 space IANA has allocated for global unicast; the rest is reserved by the IETF
# (the IPv6 Address Space registry), including the deprecated site-local fec0::/10.
_IPV6_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# A label that inet_aton (and so getaddrinfo, and the WHATWG URL standard) reads as a number.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")


@dataclass(frozen=True)
class CallbackTarget:
    """A parsed callback URL."""

    scheme: str
    host: str
    port: int


def parse_callback_url(url: str) -> CallbackTarget:
    """Check a callback URL's form (not yet its addresses); raise UnsafeTarget saying why."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeTarget(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise UnsafeTarget("the URL contains whitespace or control characters")
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTarget(f"the URL is malformed: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise UnsafeTarget("a callback URL must use http or https")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeTarget("a callback URL must not carry credentials")
    host = parts.hostname
    if not host:
        raise UnsafeTarget("the URL has no host")
    if port == 0:
        raise UnsafeTarget("the URL names port 0")
    host = _ascii_host(host)
    problem = ipv4_spelling_problem(host)
    if problem is not None:
        raise UnsafeTarget(problem)
    host = _client_host(url, host)
    return CallbackTarget(
        scheme, host, port if port is not None else (443 if scheme == "https" else 80)
    )


def _client_host(url: str, host: str) -> str:
    """The host the HTTP client will connect to, which must be the one checked here: a URL the
    client cannot parse would fail on every delivery, and one it reads as another host (IDNA
    2008 against Python's IDNA 2003, say) would be checked under one name and reached under
    another."""
    try:
        client_host = URL(url).raw_host or ""
    except ValueError as exc:
        raise UnsafeTarget(f"the HTTP client cannot parse the URL: {exc}") from exc
    if _same_host(host, client_host):
        return client_host
    raise UnsafeTarget(
        f"the host {_shown(url)} is read two ways ({host} and {client_host}); "
        f"write it as {client_host}"
    )


def _same_host(host: str, client_host: str) -> bool:
    """True if two spellings name the same host (yarl writes IPv6 literals compressed)."""
    if host == client_host:
        return True
    try:
        return ipaddress.ip_address(host) == ipaddress.ip_address(client_host)
    except ValueError:
        return False


def _shown(url: str) -> str:
    """The host as the tenant wrote it, for a message."""
    return urlsplit(url).hostname or ""


def _ascii_host(host: str) -> str:
    """The host as the HTTP client and the resolver see it: IDNA maps fullwidth digits and
    ideographic full stops to ASCII (so `127.1` in fullwidth digits is `127.1`). Left as it is
    if IDNA refuses it (then it cannot resolve either)."""
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def ipv4_spelling_problem(host: str) -> str | None:
    """Why `host` may not be used if it spells an IPv4 address other than as four decimal
    numbers; None for names, IPv6 literals and plain dotted quads.

    inet_aton, and so the resolver, reads `127.1`, `127.0.1`, `2130706433`, `0x7f000001`,
    `0177.0.0.1` and `0` as addresses; some HTTP clients pass them to it as if they were names,
    others connect to them as if they were addresses. A host whose last label is a number is no
    name (no top-level domain is numeric), so only the plain form of an address is let through.
    """
    if ":" in host:
        return None
    last = host.rstrip(".").rsplit(".", 1)[-1]
    if not _NUMERIC_LABEL.fullmatch(last):
        return None
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return (
            f"the host {host} ends in a number, so it can only be an IPv4 address; "
            "write it as four decimal numbers"
        )
    return None


def literal_host_problem(host: str, allowed: Iterable[IPNetwork]) -> str | None:
    """Why a URL's host that is an address (an IP literal, or any numeric IPv4 spelling) may not
    be reached; None for a name (its addresses are checked when it resolves) or an allowed
    address. The tenant wrote the address, so saying why does not disclose anything.

    A host with a colon is never a name: aiohttp connects to it as an IP literal without asking
    the resolver, so one that `ipaddress` cannot read (`::ffff:127.1`) is refused here rather
    than left to the C library's inet_pton."""
    host = _ascii_host(host.strip("[]"))
    problem = ipv4_spelling_problem(host)
    if problem is not None:
        return problem
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if ":" in host:
            return f"the host {host} is not a valid IPv6 address"
        return None
    problem = address_problem(address, allowed)
    return f"the address {host} {problem}" if problem is not None else None


def address_problem(address: IPAddress, allowed: Iterable[IPNetwork] = ()) -> str | None:
    """Return why `address` may not be reached, or None if it may."""
    if any(address in network for network in allowed):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            problem = address_problem(embedded, allowed)
            return f"wraps {embedded}, which {problem}" if problem else None
    if any(address in network for network in _MULTICAST):
        return "is multicast"
    block = most_specific_range(address)
    if block is not None:
        if block.reachable:
            return None
        return f"is in {block.network} ({block.name}, {block.rfc}), which is not globally reachable"
    if isinstance(address, ipaddress.IPv6Address) and address not in _IPV6_GLOBAL_UNICAST:
        return "is outside 2000::/3, the only IPv6 space allocated for global unicast"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside a mapped, compatible, NAT64, 6to4 or Teredo IPv6 address: the
    address the packets reach, so it decides (the registry's own verdict on 6to4 and Teredo is
    N/A, which says as much)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def check_addresses(host: str, addresses: Iterable[str], allowed: Iterable[IPNetwork]) -> None:
    """Raise UnsafeTarget unless every resolved address of `host` may be reached.

    The message never names the address or its range: the tenant reading it would learn what
    the gateway's resolver answers for internal names.
    """
    allowed = tuple(allowed)
    found = False
    for text in addresses:
        found = True
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if address_problem(address, allowed) is not None:
            raise UnsafeTarget(f"the host {host} resolves to a non-public address")
    if not found:
        raise UnsafeTarget(f"the host {host} does not resolve")
