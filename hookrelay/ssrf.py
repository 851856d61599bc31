"""Which callback URLs and addresses hookrelay may reach. Pure: no I/O, no clock.

Every address a callback host resolves to must be public (or inside an allowed network); the
check runs at registration and again at connect time on the resolver's answer, so spelling
tricks (`127.1`, `0x7f000001`, `2130706433`) and DNS rebinding meet the same rule.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from hookrelay.errors import UnsafeTarget

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 2048
ALLOWED_SCHEMES = frozenset({"http", "https"})

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Local-use NAT64 may embed the IPv4 address anywhere in the prefix: refuse the whole range.
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


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
    return CallbackTarget(
        scheme, host, port if port is not None else (443 if scheme == "https" else 80)
    )


def address_problem(address: IPAddress, allowed: Iterable[IPNetwork] = ()) -> str | None:
    """Return why `address` may not be reached, or None if it may."""
    if any(address in network for network in allowed):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            problem = address_problem(embedded, allowed)
            return f"wraps {embedded}, which {problem}" if problem else None
    if isinstance(address, ipaddress.IPv6Address):
        if address in _LOCAL_NAT64:
            return "is in the local-use NAT64 range"
        if address.is_site_local:
            return "is a site-local address"
    if address.is_unspecified:
        return "is unspecified"
    if address.is_loopback:
        return "is a loopback address"
    if address.is_link_local:
        return "is link-local (cloud metadata lives there)"
    if address.is_multicast:
        return "is multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "is in the carrier-grade NAT range"
    if address.is_private:
        return "is a private address"
    if address.is_reserved or not address.is_global:
        return "is a reserved address"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside a mapped, compatible, NAT64, 6to4 or Teredo IPv6 address."""
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
    """Raise UnsafeTarget unless every resolved address of `host` may be reached."""
    allowed = tuple(allowed)
    found = False
    for text in addresses:
        found = True
        address = ipaddress.ip_address(text.split("%", 1)[0])
        problem = address_problem(address, allowed)
        if problem is not None:
            raise UnsafeTarget(f"the host {host} resolves to {address}, which {problem}")
    if not found:
        raise UnsafeTarget(f"the host {host} does not resolve")
