"""Property tests (hypothesis) for the parsers and the address rules: no input makes them fail
in any way but the one they promise."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import time

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from hookrelay.api.http import nesting_depth
from hookrelay.durations import format_duration, parse_duration
from hookrelay.errors import InvalidPayload, UnsafeTarget
from hookrelay.schemas import validate_event_data
from hookrelay.signing.webhooks import SigningKey, generate_hmac_secret, webhook_headers
from hookrelay.ssrf.rules import address_problem, ipv4_spelling_problem, parse_callback_url

PRIVATE_V4 = [
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "0.0.0.0/8",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@given(st.integers(min_value=0, max_value=10**9))
def test_a_formatted_duration_parses_back(millis: int) -> None:
    assert round(parse_duration(format_duration(millis / 1000)) * 1000) == millis


@given(st.text())
def test_parsing_any_text_as_a_duration_gives_seconds_or_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        assert parse_duration(text) >= 0


@given(st.text(max_size=300))
def test_any_text_as_a_callback_url_is_parsed_or_refused_with_a_reason(text: str) -> None:
    try:
        target = parse_callback_url(text)
    except UnsafeTarget as refused:
        assert refused.message
    else:
        assert target.scheme in ("http", "https") and target.host and 0 < target.port < 65536


@given(
    st.sampled_from(PRIVATE_V4).flatmap(
        lambda net: st.integers(0, net.num_addresses - 1).map(
            lambda n, net=net: net.network_address + n
        )
    )
)
def test_every_address_in_a_private_range_is_refused_and_so_are_its_ipv6_wrappers(
    address: ipaddress.IPv4Address,
) -> None:
    assert address_problem(address) is not None
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    nat64 = ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(address))
    sixtofour = ipaddress.IPv6Address((0x2002 << 112) | (int(address) << 80))
    for wrapper in (mapped, nat64, sixtofour):
        assert address_problem(wrapper) is not None, wrapper


@given(st.ip_addresses(v=4))
def test_an_ipv4_address_and_its_mapped_form_get_the_same_verdict(
    address: ipaddress.IPv4Address,
) -> None:
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    assert (address_problem(address) is None) == (address_problem(mapped) is None)


def _spell(value: int, radix: str) -> str:
    return {"dec": str(value), "oct": f"0{value:o}", "hex": f"0x{value:x}", "HEX": f"0X{value:X}"}[
        radix
    ]


@st.composite
def ipv4_spellings(draw: st.DrawFn) -> str:
    """A spelling of an IPv4 address that inet_aton reads: one to four numbers, each decimal,
    octal or hexadecimal, the last one filling the bytes the others leave."""
    count = draw(st.integers(1, 4))
    leading = [draw(st.integers(0, 255)) for _ in range(count - 1)]
    last = draw(st.integers(0, 2 ** (8 * (5 - count)) - 1))
    radixes = st.sampled_from(["dec", "oct", "hex", "HEX"])
    return ".".join(_spell(n, draw(radixes)) for n in [*leading, last])


@settings(max_examples=300)
@given(ipv4_spellings())
def test_every_spelling_inet_aton_reads_is_refused_unless_a_plain_dotted_quad(host: str) -> None:
    address = ipaddress.IPv4Address(socket.inet_aton(host))  # the libc reads it
    if host == str(address):
        assert ipv4_spelling_problem(host) is None
        return
    assert ipv4_spelling_problem(host) is not None
    try:
        parse_callback_url(f"https://{host}/hook")
    except UnsafeTarget as refused:
        assert "four decimal numbers" in refused.message
    else:
        raise AssertionError(f"{host} was accepted")


@settings(max_examples=50)
@given(json_values, st.text(min_size=1, max_size=40).filter(lambda s: "." not in s))
def test_every_signature_verifies_with_the_reference_library(data: object, msg_id: str) -> None:
    body = orjson.dumps({"type": "x.y", "data": data})
    secret = generate_hmac_secret()
    now = int(time.time())
    headers = webhook_headers([SigningKey.from_secret(secret)], msg_id, now, body)
    Webhook(secret).verify(body, headers)


@given(json_values)
def test_nesting_depth_agrees_with_the_recursive_definition(document: object) -> None:
    def depth(value: object) -> int:
        if isinstance(value, dict):
            return 1 + max((depth(v) for v in value.values()), default=0)
        if isinstance(value, list):
            return 1 + max((depth(v) for v in value), default=0)
        return 0

    assert nesting_depth(document) == depth(document)


@given(st.sampled_from(["job.progress", "job.completed", "job.failed", "image.ready"]), json_values)
def test_any_event_data_is_accepted_or_refused_with_paths(event_type: str, data: object) -> None:
    try:
        validate_event_data(event_type, data)
    except InvalidPayload as refused:
        assert refused.details and all(d["path"].startswith("$.data") for d in refused.details)
