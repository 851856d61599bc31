"""Which callback URLs and addresses may be reached: URL form, address ranges, resolver answers."""

from __future__ import annotations

import ipaddress

import pytest

from hookrelay.api.errors import answer_of
from hookrelay.errors import InvalidPayload, UnsafeTarget
from hookrelay.settings import LOOPBACK_NETWORKS
from hookrelay.ssrf.rules import (
    MAX_URL_LENGTH,
    CallbackTarget,
    address_problem,
    check_addresses,
    ipv4_spelling_problem,
    literal_host_problem,
    parse_callback_url,
)


def teredo(
    client: str, server: str = "65.54.227.120", flags: int = 0x8000, port: int = 40000
) -> str:
    """The Teredo address (2001::/32) of a client IPv4: it is stored XOR 0xffffffff."""
    client_bits = int(ipaddress.IPv4Address(client)) ^ 0xFFFFFFFF
    value = (
        (0x20010000 << 96)
        | (int(ipaddress.IPv4Address(server)) << 64)
        | (flags << 48)
        | ((port ^ 0xFFFF) << 32)
        | client_bits
    )
    return str(ipaddress.IPv6Address(value))


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


# parse_callback_url


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("http://example.com", CallbackTarget("http", "example.com", 80)),
        ("https://example.com/hook?x=1", CallbackTarget("https", "example.com", 443)),
        ("https://example.com:8443/hook", CallbackTarget("https", "example.com", 8443)),
        ("http://example.com:8080", CallbackTarget("http", "example.com", 8080)),
        ("HTTPS://Example.COM/Hook", CallbackTarget("https", "example.com", 443)),
        ("http://93.184.216.34/", CallbackTarget("http", "93.184.216.34", 80)),
        (
            "https://[2606:4700:4700::1111]:444/",
            CallbackTarget("https", "2606:4700:4700::1111", 444),
        ),
    ],
)
def test_parse_callback_url_accepts_http_and_https(url: str, target: CallbackTarget) -> None:
    assert parse_callback_url(url) == target


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/file",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "gopher://example.com:70/",
        "ws://example.com/socket",
        "data:text/plain,hello",
        "example.com/hook",
        "//example.com/hook",
    ],
)
def test_parse_callback_url_refuses_other_schemes(url: str) -> None:
    with pytest.raises(UnsafeTarget, match="http or https"):
        parse_callback_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://u:p@example.com",
        "http://u@example.com",
        "http://:p@example.com",
        "https://@example.com/",
        "http://example.com\\@127.0.0.1/",
    ],
)
def test_parse_callback_url_refuses_credentials(url: str) -> None:
    with pytest.raises(UnsafeTarget, match="credentials"):
        parse_callback_url(url)


@pytest.mark.parametrize("url", ["http://", "https:///hook", "http://:8080/"])
def test_parse_callback_url_refuses_a_url_without_host(url: str) -> None:
    with pytest.raises(UnsafeTarget, match="no host"):
        parse_callback_url(url)


def test_parse_callback_url_refuses_a_url_that_is_too_long() -> None:
    url = "https://example.com/" + "a" * MAX_URL_LENGTH
    with pytest.raises(UnsafeTarget, match="longer than"):
        parse_callback_url(url)


def test_parse_callback_url_accepts_a_url_of_exactly_the_maximum_length() -> None:
    prefix = "https://example.com/"
    url = prefix + "a" * (MAX_URL_LENGTH - len(prefix))
    assert parse_callback_url(url).host == "example.com"


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/a b",
        " http://example.com/",
        "http://example.com/\r\nX-Injected: 1",
        "http://example.com/\n",
        "http://example.com/\r",
        "http://exam\tple.com/",
        "http://example.com/\x00",
    ],
    ids=["space", "leading-space", "crlf", "lf", "cr", "tab", "nul"],
)
def test_parse_callback_url_refuses_whitespace_and_line_breaks(url: str) -> None:
    with pytest.raises(UnsafeTarget, match="whitespace or control"):
        parse_callback_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/\x0b",
        "http://example.com/\x0c",
        "http://exa\x1bmple.com/",
        "http://example.com/\x7f",
    ],
    ids=["vt", "ff", "esc", "del"],
)
def test_parse_callback_url_refuses_other_control_characters(url: str) -> None:
    with pytest.raises(UnsafeTarget):
        parse_callback_url(url)


@pytest.mark.parametrize("url", ["https://example.com:99999/", "https://example.com:abc/"])
def test_parse_callback_url_refuses_a_bad_port(url: str) -> None:
    with pytest.raises(UnsafeTarget, match="malformed"):
        parse_callback_url(url)


def test_parse_callback_url_refuses_port_zero() -> None:
    with pytest.raises(UnsafeTarget):
        parse_callback_url("http://example.com:0/")


def test_unsafe_target_is_reported_as_invalid_payload() -> None:
    with pytest.raises(InvalidPayload) as caught:
        parse_callback_url("ftp://example.com")
    assert answer_of(caught.value) == (422, "unsafe_url")


# Numeric IPv4 spellings: every form inet_aton reads, refused by hookrelay's own rule

NUMERIC_SPELLINGS = [
    "127.1",
    "127.0.1",
    "2130706433",
    "0x7f000001",
    "0X7F000001",
    "0x7f.1",
    "0x7f.0x0.0x0.0x1",
    "0177.0.0.1",
    "0177.1",
    "017700000001",
    "0",
    "00",
    "0x",
    "0x0",
    "10.1",
    "012.0.0.1",
    "127.0.0.01",
    "127.0.0.1.",
    "127.0.0.1..",
    "127..1",
    "8.8.8.8.",
    "1.2.3.4.5",
    "256.1.1.1",
    "4294967296",
]


@pytest.mark.parametrize("host", NUMERIC_SPELLINGS)
def test_a_numeric_ipv4_spelling_has_a_problem(host: str) -> None:
    problem = ipv4_spelling_problem(host)
    assert problem is not None
    assert "four decimal numbers" in problem


def test_a_numeric_spelling_is_refused_saying_how_to_write_it() -> None:
    assert ipv4_spelling_problem("0x7f.1") == (
        "the host 0x7f.1 ends in a number, so it can only be an IPv4 address; "
        "write it as four decimal numbers"
    )


@pytest.mark.parametrize("host", NUMERIC_SPELLINGS)
def test_a_numeric_ipv4_spelling_is_refused_in_a_callback_url(host: str) -> None:
    with pytest.raises(UnsafeTarget, match="four decimal numbers"):
        parse_callback_url(f"http://{host}:8080/hook")


@pytest.mark.parametrize("host", NUMERIC_SPELLINGS)
def test_a_numeric_ipv4_spelling_is_refused_even_inside_an_allowed_network(host: str) -> None:
    """An allowed network is for addresses written plainly, not a way to let spellings in."""
    assert literal_host_problem(host, [ipaddress.ip_network("0.0.0.0/0")]) is not None


@pytest.mark.parametrize("url", ["http://\uff11\uff12\uff17.\uff11/", "http://127\u30021/"])
def test_a_numeric_spelling_in_other_scripts_is_refused(url: str) -> None:
    """IDNA maps fullwidth digits and ideographic full stops to ASCII (yarl and the resolver do)."""
    with pytest.raises(UnsafeTarget, match="four decimal numbers"):
        parse_callback_url(url)


@pytest.mark.parametrize(
    "host",
    [
        "93.184.216.34",
        "0.0.0.0",
        "example.com",
        "1.example.com",
        "123.example",
        "0x7f.example",
        "example.com.",
        "2606:4700:4700::1111",
        "::ffff:127.0.0.1",
    ],
)
def test_names_dotted_quads_and_ipv6_literals_are_not_numeric_spellings(host: str) -> None:
    assert ipv4_spelling_problem(host) is None


@pytest.mark.parametrize("host", ["127.0.0.1", "10.0.0.1", "::1", "fd00::1", "[::1]"])
def test_literal_host_problem_refuses_a_non_public_literal(host: str) -> None:
    problem = literal_host_problem(host, ())
    assert problem is not None
    assert problem.startswith(f"the address {host.strip('[]')} is in ")


@pytest.mark.parametrize("host", ["93.184.216.34", "example.com", "localhost"])
def test_literal_host_problem_leaves_public_literals_and_names_alone(host: str) -> None:
    assert literal_host_problem(host, ()) is None


@pytest.mark.parametrize(
    "host",
    ["::ffff:127.1", "::ffff:0177.0.0.1", "::ffff:127.0.0.01", "[::ffff:127.1]", "::1::2", "1:2"],
)
def test_a_host_with_a_colon_that_is_no_ipv6_address_is_refused(host: str) -> None:
    """The HTTP client takes any host with a colon for an IP literal and connects to it without
    asking the resolver; only the C library's inet_pton would stand in the way."""
    problem = literal_host_problem(host, [ipaddress.ip_network("::/0")])
    assert problem == f"the host {host.strip('[]')} is not a valid IPv6 address"


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34\u200b:9/hook",  # IDNA drops a zero-width space; yarl refuses it
        "http://a\u00adb.example/",  # and a soft hyphen
    ],
)
def test_a_url_the_http_client_cannot_parse_is_refused(url: str) -> None:
    with pytest.raises(UnsafeTarget, match="the HTTP client cannot parse the URL"):
        parse_callback_url(url)


def test_a_host_the_http_client_reads_otherwise_is_refused() -> None:
    """IDNA 2003 reads faß.de as fass.de, the HTTP client (IDNA 2008) as xn--fa-hia.de: two
    different names, so the one checked would not be the one connected to."""
    with pytest.raises(UnsafeTarget) as refused:
        parse_callback_url("https://faß.de/hook")
    assert refused.value.message == (
        "the host faß.de is read two ways (fass.de and xn--fa-hia.de); write it as xn--fa-hia.de"
    )
    assert parse_callback_url("https://xn--fa-hia.de/hook").host == "xn--fa-hia.de"


def test_an_ipv6_literal_written_long_is_the_same_host_to_the_http_client() -> None:
    target = parse_callback_url("https://[2606:4700:4700:0:0:0:0:1111]/")
    assert target.host == "2606:4700:4700::1111"


# address_problem

TEREDO_LOOPBACK = "2001:0:4136:e378:8000:63bf:80ff:fffe"

REFUSED = [
    # IPv4
    "127.0.0.1",
    "127.255.255.254",
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",
    "169.254.0.1",
    "100.64.0.1",
    "100.127.255.254",
    "0.0.0.0",
    "0.1.2.3",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "198.18.0.1",
    "198.19.255.254",
    "192.0.0.1",
    "192.0.2.1",
    "198.51.100.1",
    "203.0.113.1",
    # IPv6
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12::1",
    "ff02::1",
    "ff05::1:3",
    "2001:db8::1",
    "100::1",
    "::ffff:0:7f00:1",
    # IPv4 wrapped in IPv6
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:0.0.0.0",
    "::127.0.0.1",
    "::10.0.0.1",
    "64:ff9b::7f00:1",
    "64:ff9b::a00:1",
    "64:ff9b::a9fe:a9fe",
    "64:ff9b::6440:1",
    "64:ff9b:1::7f00:1",
    "2002:7f00:1::1",
    "2002:a00:1::1",
    "2002:a9fe:a9fe::1",
    TEREDO_LOOPBACK,
    teredo("10.0.0.1"),
    teredo("169.254.169.254"),
]

ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
    teredo("8.8.8.8"),
]


def test_teredo_helper_makes_the_known_form_for_loopback() -> None:
    assert teredo("127.0.0.1") == TEREDO_LOOPBACK
    address = ipaddress.IPv6Address(TEREDO_LOOPBACK)
    assert address.teredo == (
        ipaddress.IPv4Address("65.54.227.120"),
        ipaddress.IPv4Address("127.0.0.1"),
    )


def test_refused_table_is_large() -> None:
    assert len(REFUSED) >= 30


@pytest.mark.parametrize("address", REFUSED)
def test_address_is_refused(address: str) -> None:
    assert address_problem(ip(address)) is not None


@pytest.mark.parametrize("address", ALLOWED)
def test_public_address_passes(address: str) -> None:
    assert address_problem(ip(address)) is None


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("127.0.0.1", "is in 127.0.0.0/8 (Loopback, RFC 1122"),
        ("::1", "is in ::1/128 (Loopback Address, RFC 4291)"),
        ("169.254.169.254", "is in 169.254.0.0/16 (Link Local, RFC 3927)"),
        ("100.64.0.1", "is in 100.64.0.0/10 (Shared Address Space, RFC 6598)"),
        ("10.0.0.1", "is in 10.0.0.0/8 (Private-Use, RFC 1918)"),
        ("192.0.0.8", "not globally reachable"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "This host on this network"),
        ("4000::1", "outside 2000::/3"),
        ("::ffff:127.0.0.1", "wraps 127.0.0.1, which is in 127.0.0.0/8 (Loopback"),
        ("2002:a00:1::1", "wraps 10.0.0.1"),
        (TEREDO_LOOPBACK, "wraps 127.0.0.1"),
    ],
)
def test_address_problem_says_why(address: str, words: str) -> None:
    problem = address_problem(ip(address))
    assert problem is not None
    assert words in problem


@pytest.mark.parametrize("address", ["fec0::1", "feff:ffff::1"])
def test_site_local_ipv6_is_refused(address: str) -> None:
    assert address_problem(ip(address)) is not None


@pytest.mark.parametrize("address", ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"])
def test_allowed_network_lets_a_loopback_address_through(address: str) -> None:
    assert address_problem(ip(address), LOOPBACK_NETWORKS) is None


def test_allowed_network_does_not_let_other_private_addresses_through() -> None:
    assert address_problem(ip("10.0.0.1"), LOOPBACK_NETWORKS) is not None


def test_allowed_private_network_lets_its_addresses_through() -> None:
    assert address_problem(ip("10.1.2.3"), [ipaddress.ip_network("10.0.0.0/8")]) is None


# check_addresses


def test_check_addresses_accepts_only_public_answers() -> None:
    check_addresses("example.com", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"], ())


@pytest.mark.parametrize("unsafe", ["127.0.0.1", "10.0.0.1", "::1", "169.254.169.254"])
def test_check_addresses_refuses_a_host_if_any_address_is_unsafe(unsafe: str) -> None:
    with pytest.raises(UnsafeTarget) as refused:
        check_addresses("rebind.example", ["8.8.8.8", unsafe, "1.1.1.1"], ())
    assert refused.value.message == "the host rebind.example resolves to a non-public address"


@pytest.mark.parametrize(
    "unsafe", ["127.0.0.1", "10.0.0.5", "::1", "fd12::7", "169.254.169.254", "::ffff:10.0.0.5"]
)
def test_a_refused_name_does_not_tell_what_it_resolves_to(unsafe: str) -> None:
    """The answer of the gateway's resolver would map internal names for a tenant."""
    with pytest.raises(UnsafeTarget) as refused:
        check_addresses("vm", [unsafe], ())
    assert refused.value.message == "the host vm resolves to a non-public address"
    assert refused.value.details is None


def test_check_addresses_refuses_an_empty_answer() -> None:
    with pytest.raises(UnsafeTarget, match="does not resolve"):
        check_addresses("nothing.example", [], ())


def test_check_addresses_refuses_an_empty_generator() -> None:
    with pytest.raises(UnsafeTarget, match="does not resolve"):
        check_addresses("nothing.example", iter(()), ())


def test_check_addresses_ignores_a_zone_id() -> None:
    with pytest.raises(UnsafeTarget, match="non-public"):
        check_addresses("local.example", ["fe80::1%eth0"], ())
    check_addresses("local.example", ["fe80::1%eth0"], [ipaddress.ip_network("fe80::/10")])


def test_check_addresses_honours_allowed_networks() -> None:
    check_addresses("localhost", ["127.0.0.1", "::1"], LOOPBACK_NETWORKS)
