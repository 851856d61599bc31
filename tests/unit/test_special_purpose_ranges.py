"""The IANA special-purpose registries as data: every block, first and last address, refused or
allowed as the registry says, whatever the interpreter's own `ipaddress` tables know."""

from __future__ import annotations

import ipaddress

import pytest

from hookrelay.ssrf.rules import address_problem
from hookrelay.ssrf.special_ranges import SPECIAL_RANGES, most_specific_range, parse_ranges

R, A = "refused", "allowed"

# Each block of both registries: its "Globally Reachable" value there, then the verdict for its
# first and its last address. Written by hand from the registries, not derived from the data
# file, so that a changed row fails here. The first or last address of a block that holds a more
# specific one takes that block's verdict (192.0.0.0/24 starts with 192.0.0.0/29); a wrapper
# block's ends wrap 0.0.0.0 and 255.255.255.255, which are refused.
REGISTRY = [
    # IPv4
    ("0.0.0.0/8", "False", R, R),
    ("0.0.0.0/32", "False", R, R),
    ("10.0.0.0/8", "False", R, R),
    ("100.64.0.0/10", "False", R, R),
    ("127.0.0.0/8", "False", R, R),
    ("169.254.0.0/16", "False", R, R),
    ("172.16.0.0/12", "False", R, R),
    ("192.0.0.0/24", "False", R, R),
    ("192.0.0.0/29", "False", R, R),
    ("192.0.0.8/32", "False", R, R),
    ("192.0.0.9/32", "True", A, A),
    ("192.0.0.10/32", "True", A, A),
    ("192.0.0.170/32", "False", R, R),
    ("192.0.0.171/32", "False", R, R),
    ("192.0.2.0/24", "False", R, R),
    ("192.31.196.0/24", "True", A, A),
    ("192.52.193.0/24", "True", A, A),
    ("192.88.99.0/24", "", R, R),
    ("192.88.99.2/32", "False", R, R),
    ("192.168.0.0/16", "False", R, R),
    ("192.175.48.0/24", "True", A, A),
    ("198.18.0.0/15", "False", R, R),
    ("198.51.100.0/24", "False", R, R),
    ("203.0.113.0/24", "False", R, R),
    ("240.0.0.0/4", "False", R, R),
    ("255.255.255.255/32", "False", R, R),
    # IPv6
    ("::1/128", "False", R, R),
    ("::/128", "False", R, R),
    ("::ffff:0:0/96", "False", R, R),
    ("64:ff9b::/96", "True", R, R),
    ("64:ff9b:1::/48", "False", R, R),
    ("100::/64", "False", R, R),
    ("100:0:0:1::/64", "False", R, R),
    ("2001::/23", "False", R, R),
    ("2001::/32", "N/A", R, R),
    ("2001:1::1/128", "True", A, A),
    ("2001:1::2/128", "True", A, A),
    ("2001:1::3/128", "True", A, A),
    ("2001:2::/48", "False", R, R),
    ("2001:3::/32", "True", A, A),
    ("2001:4:112::/48", "True", A, A),
    ("2001:10::/28", "", R, R),
    ("2001:20::/28", "True", A, A),
    ("2001:30::/28", "True", A, A),
    ("2001:db8::/32", "False", R, R),
    ("2002::/16", "N/A", R, R),
    ("2620:4f:8000::/48", "True", A, A),
    ("3fff::/20", "False", R, R),
    ("5f00::/16", "False", R, R),
    ("fc00::/7", "False", R, R),
    ("fe80::/10", "False", R, R),
]


def verdict(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return A if address_problem(address) is None else R


@pytest.mark.parametrize(
    ("prefix", "reachable", "first", "last"), REGISTRY, ids=[row[0] for row in REGISTRY]
)
def test_registry_block_is_refused_or_allowed_as_the_registry_says(
    prefix: str, reachable: str, first: str, last: str
) -> None:
    network = ipaddress.ip_network(prefix)
    assert (verdict(network.network_address), verdict(network.broadcast_address)) == (first, last)


def test_the_data_file_holds_exactly_the_registry_blocks_above() -> None:
    in_file = [(str(r.network), r.globally_reachable) for r in SPECIAL_RANGES]
    assert sorted(in_file) == sorted(
        (str(ipaddress.ip_network(prefix)), reachable) for prefix, reachable, _, _ in REGISTRY
    )


def test_every_block_has_a_name_and_an_rfc() -> None:
    for block in SPECIAL_RANGES:
        assert block.name and block.rfc.startswith("RFC "), block


@pytest.mark.parametrize(
    ("address", "prefix"),
    [
        ("192.0.0.9", "192.0.0.9/32"),
        ("192.0.0.11", "192.0.0.0/24"),
        ("192.0.0.7", "192.0.0.0/29"),
        ("192.88.99.2", "192.88.99.2/32"),
        ("2001:1::3", "2001:1::3/128"),
        ("2001:1::4", "2001::/23"),
        ("2001:0:1::1", "2001::/32"),
        ("0.0.0.0", "0.0.0.0/32"),
    ],
)
def test_the_most_specific_block_decides(address: str, prefix: str) -> None:
    block = most_specific_range(ipaddress.ip_address(address))
    assert block is not None
    assert str(block.network) == prefix


def test_a_public_address_is_in_no_block() -> None:
    assert most_specific_range(ipaddress.ip_address("8.8.8.8")) is None
    assert most_specific_range(ipaddress.ip_address("2606:4700:4700::1111")) is None


@pytest.mark.parametrize(
    "address",
    [
        # Accepted by Python 3.11.7's ipaddress as global; the registry says otherwise.
        "192.0.0.8",
        "192.0.0.100",
        "192.0.0.255",
        "3fff::1",
        "3fff:fff:ffff::1",
        "5f00::1",
        "100:0:0:1::1",
    ],
)
def test_blocks_the_interpreter_may_not_know_are_refused(address: str) -> None:
    problem = address_problem(ipaddress.ip_address(address))
    assert problem is not None
    assert "not globally reachable" in problem


@pytest.mark.parametrize("address", ["2001:1::3", "2001:3::1", "2001:20::1", "2001:30::1"])
def test_globally_reachable_blocks_inside_the_ietf_block_are_allowed(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None


# One address inside each block that no more specific block holds, so that the block's own
# verdict decides it (the ends above may fall to a more specific block or wrap 0.0.0.0).
INTERIOR = [
    ("0.0.0.1", "0.0.0.0/8", R),
    ("0.0.0.0", "0.0.0.0/32", R),
    ("10.20.30.40", "10.0.0.0/8", R),
    ("100.100.1.1", "100.64.0.0/10", R),
    ("127.8.9.10", "127.0.0.0/8", R),
    ("169.254.3.4", "169.254.0.0/16", R),
    ("172.20.1.1", "172.16.0.0/12", R),
    ("192.0.0.100", "192.0.0.0/24", R),
    ("192.0.0.4", "192.0.0.0/29", R),
    ("192.0.0.8", "192.0.0.8/32", R),
    ("192.0.0.9", "192.0.0.9/32", A),
    ("192.0.0.10", "192.0.0.10/32", A),
    ("192.0.0.170", "192.0.0.170/32", R),
    ("192.0.0.171", "192.0.0.171/32", R),
    ("192.0.2.77", "192.0.2.0/24", R),
    ("192.31.196.53", "192.31.196.0/24", A),
    ("192.52.193.7", "192.52.193.0/24", A),
    ("192.88.99.1", "192.88.99.0/24", R),
    ("192.88.99.2", "192.88.99.2/32", R),
    ("192.168.1.1", "192.168.0.0/16", R),
    ("192.175.48.6", "192.175.48.0/24", A),
    ("198.19.0.1", "198.18.0.0/15", R),
    ("198.51.100.9", "198.51.100.0/24", R),
    ("203.0.113.9", "203.0.113.0/24", R),
    ("250.1.2.3", "240.0.0.0/4", R),
    ("255.255.255.255", "255.255.255.255/32", R),
    ("::1", "::1/128", R),
    ("::", "::/128", R),
    ("::ffff:10.1.2.3", "::ffff:0:0/96", R),
    ("64:ff9b::a01:203", "64:ff9b::/96", R),
    ("64:ff9b:1::5db8:d822", "64:ff9b:1::/48", R),
    ("100::1234", "100::/64", R),
    ("100:0:0:1::1234", "100:0:0:1::/64", R),
    ("2001:100::1", "2001::/23", R),
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "2001::/32", R),
    ("2001:1::1", "2001:1::1/128", A),
    ("2001:1::2", "2001:1::2/128", A),
    ("2001:1::3", "2001:1::3/128", A),
    ("2001:2::99", "2001:2::/48", R),
    ("2001:3:1::1", "2001:3::/32", A),
    ("2001:4:112::53", "2001:4:112::/48", A),
    ("2001:11::1", "2001:10::/28", R),
    ("2001:21::1", "2001:20::/28", A),
    ("2001:31::1", "2001:30::/28", A),
    ("2001:db8:1::1", "2001:db8::/32", R),
    ("2002:a00:1::1", "2002::/16", R),
    ("2620:4f:8000::53", "2620:4f:8000::/48", A),
    ("3fff:123::1", "3fff::/20", R),
    ("5f00:1::1", "5f00::/16", R),
    ("fd00:1::1", "fc00::/7", R),
    ("fe80::1234", "fe80::/10", R),
]


def test_every_registry_block_has_an_interior_address_below() -> None:
    assert sorted(str(ipaddress.ip_network(p)) for _, p, _ in INTERIOR) == sorted(
        str(ipaddress.ip_network(p)) for p, _, _, _ in REGISTRY
    )


@pytest.mark.parametrize(("address", "prefix", "expected"), INTERIOR, ids=[r[1] for r in INTERIOR])
def test_an_interior_address_takes_its_own_blocks_verdict(
    address: str, prefix: str, expected: str
) -> None:
    block = most_specific_range(ipaddress.ip_address(address))
    assert block is not None
    assert block.network == ipaddress.ip_network(prefix)
    assert verdict(ipaddress.ip_address(address)) == expected


# Each block that wraps an IPv4 address, with one public and one private address inside: the
# IPv4 address decides, except in the local-use NAT64 prefix, whose form only its own network
# knows (the registry: not globally reachable), refused whatever it wraps.
WRAPPED = [
    ("::ffff:0:0/96", "::ffff:93.184.216.34", A, "::ffff:192.168.0.1", R),
    ("64:ff9b::/96", "64:ff9b::93.184.216.34", A, "64:ff9b::127.0.0.1", R),
    ("64:ff9b:1::/48", "64:ff9b:1::5db8:d822", R, "64:ff9b:1::a00:1", R),
    ("2002::/16", "2002:5db8:d822::1", A, "2002:c0a8:1::1", R),
    (
        "2001::/32",
        "2001:0:4136:e378:8000:63bf:a247:27dd",  # client 93.184.216.34
        A,
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # client 10.0.0.1
        R,
    ),
]


@pytest.mark.parametrize(
    ("prefix", "public", "public_verdict", "private", "private_verdict"),
    WRAPPED,
    ids=[r[0] for r in WRAPPED],
)
def test_a_wrapper_block_takes_the_verdict_of_the_address_inside(
    prefix: str, public: str, public_verdict: str, private: str, private_verdict: str
) -> None:
    network = ipaddress.ip_network(prefix)
    assert ipaddress.ip_address(public) in network and ipaddress.ip_address(private) in network
    assert verdict(ipaddress.ip_address(public)) == public_verdict
    assert verdict(ipaddress.ip_address(private)) == private_verdict


HEADER = "registry,prefix,name,rfc,allocated,terminated,globally_reachable,note\n"


@pytest.mark.parametrize(
    ("row", "complaint"),
    [
        ("ipv4,10.0.0.0/8,Private-Use,RFC 1918,1996-02,,Maybe,", "globally_reachable"),
        ("ipv4,10.0.0.0/8,Private-Use,RFC 1918,1996-02,,false,", "globally_reachable"),
        ("ipv6,10.0.0.0/8,Private-Use,RFC 1918,1996-02,,False,", "registry"),
        ("ipv4,fc00::/7,Unique-Local,RFC 4193,2005-10,,False,", "registry"),
        ("ipv5,10.0.0.0/8,Private-Use,RFC 1918,1996-02,,False,", "registry"),
        ("ipv4,10.0.0.1/8,Private-Use,RFC 1918,1996-02,,False,", "prefix"),
        ("ipv4,10.0.0.0/8,,RFC 1918,1996-02,,False,", "name"),
        ("ipv4,10.0.0.0/8,Private-Use,,1996-02,,False,", "rfc"),
        ("ipv4,10.0.0.0/8,Private-Use,RFC 1918,1996-02,,False", "columns"),
    ],
)
def test_a_bad_row_in_the_data_file_fails_loudly_naming_its_line(row: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=rf"line 3: .*{complaint}"):
        parse_ranges("# a comment\n" + HEADER + row + "\n")


def test_a_data_file_with_other_columns_fails_loudly() -> None:
    with pytest.raises(ValueError, match="columns"):
        parse_ranges("registry,prefix,name,rfc,reachable\nipv4,10.0.0.0/8,P,RFC 1918,False\n")


def test_a_good_row_parses() -> None:
    (block,) = parse_ranges(HEADER + "ipv4,10.0.0.0/8,Private-Use,RFC 1918,1996-02,,False,\n")
    assert (str(block.network), block.name, block.reachable) == ("10.0.0.0/8", "Private-Use", False)
