"""Property tests of the query-string parsers: any text in any parameter gives a value within
its rule or a BadRequest (a 400), never another exception (a 500)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from hypothesis import given
from hypothesis import strategies as st

from hookrelay.api import http
from hookrelay.errors import BadRequest
from hookrelay.ids import is_id
from hookrelay.schemas import is_event_type, is_job_id
from hookrelay.statuses import DeliveryStatus

# Text of every kind, with the digits of other scripts (which str.isdigit() accepts) drawn often.
awkward_digits = st.sampled_from(["\u00b3", "\u0663", "\uff15", "\u2460", "1_0", " 1", "nan"])
query_text = st.text() | awkward_digits | st.builds(str.__add__, st.text(), awkward_digits)


def _request(name: str, value: str) -> web.Request:
    return make_mocked_request("GET", "/?" + urlencode({name: value}))


PARSERS: dict[str, tuple[str, Callable[[web.Request], Any], Callable[[Any], bool]]] = {
    "limit": ("limit", http.page_size, lambda v: 1 <= v <= http.MAX_PAGE_SIZE),
    "wait": (
        "wait",
        lambda r: http.seconds_param(r, "wait", http.MAX_WAIT_S),
        lambda v: 0 <= v <= http.MAX_WAIT_S,
    ),
    "since": ("since", lambda r: http.query_time(r, "since"), lambda v: v.tzinfo is not None),
    "job_id": ("job_id", http.query_job_id, is_job_id),
    "type": ("type", lambda r: http.query_event_type(r, "type"), is_event_type),
    "endpoint_id": (
        "endpoint_id",
        lambda r: http.query_id(r, "endpoint_id", "ep_"),
        lambda v: is_id(v, "ep_"),
    ),
    "status": (
        "status",
        lambda r: http.query_choice(r, "status", DeliveryStatus),
        lambda v: type(v) is DeliveryStatus,
    ),
    # An empty cursor is the first page.
    "cursor": ("cursor", http.cursor, lambda v: v is None or http.CURSOR_ID.fullmatch(v)),
}


@pytest.mark.parametrize("parameter", sorted(PARSERS))
@given(text=query_text)
def test_any_text_in_a_query_parameter_is_parsed_within_its_rule_or_a_400(
    parameter: str, text: str
) -> None:
    name, parse, within = PARSERS[parameter]
    with contextlib.suppress(BadRequest):
        assert within(parse(_request(name, text)))


# A value each parser must take: a parser that refused everything would pass the property above.
GOOD = {
    "limit": "250",
    "wait": "30",
    "since": "2026-01-02T03:04:05Z",
    "job_id": "job_1",
    "type": "job.completed",
    "endpoint_id": "ep_" + "0" * 32,
    "status": "dead",
    "cursor": "",
}


@pytest.mark.parametrize("parameter", sorted(PARSERS))
def test_a_good_value_of_each_query_parameter_is_taken(parameter: str) -> None:
    name, parse, within = PARSERS[parameter]
    assert GOOD.keys() == PARSERS.keys()
    assert within(parse(_request(name, GOOD[parameter])))


@pytest.mark.parametrize("text", ["\u00b3", "\u0663", "\uff15", ""])
def test_a_limit_is_ascii_digits(text: str) -> None:
    with pytest.raises(BadRequest):
        http.page_size(_request("limit", text))


# The bounds are declared once, in hookrelay.api.http; /openapi.json states the same ones.


def _query_schema(name: str) -> dict[str, Any]:
    from hookrelay.api.openapi import openapi_document

    found = [
        parameter["schema"]
        for methods in openapi_document()["paths"].values()
        for operation in methods.values()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query" and parameter["name"] == name
    ]
    assert found
    assert all(schema == found[0] for schema in found)
    return found[0]


def test_openapi_states_the_page_size_bound_the_parser_holds() -> None:
    assert http.MAX_PAGE_SIZE == 250
    assert _query_schema("limit")["maximum"] == http.MAX_PAGE_SIZE
    assert http.page_size(_request("limit", "250")) == 250
    with pytest.raises(BadRequest, match="from 1 to 250"):
        http.page_size(_request("limit", "251"))


def test_openapi_states_the_long_poll_wait_bound_the_parser_holds() -> None:
    assert http.MAX_WAIT_S == 60
    assert _query_schema("wait")["maximum"] == http.MAX_WAIT_S
    assert http.seconds_param(_request("wait", "60"), "wait", http.MAX_WAIT_S) == 60.0
    with pytest.raises(BadRequest, match="from 0 to 60"):
        http.seconds_param(_request("wait", "60.5"), "wait", http.MAX_WAIT_S)
