"""Events: ingest (one, or a batch; idempotent with Idempotency-Key), list, get."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hookrelay.api.http import (
    cursor,
    json_response,
    page,
    page_size,
    principal,
    query_time,
    read_json,
)
from hookrelay.api.keys import GATEWAY
from hookrelay.api.views import delivery_view, event_view
from hookrelay.errors import BadRequest
from hookrelay.models import Event, EventFilter
from hookrelay.schemas import validate_request

MAX_IDEMPOTENCY_KEY_CHARS = 255


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY_CHARS:
        raise BadRequest(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters")
    return key


def _one(events: list[Event]) -> dict[str, Any]:
    return event_view(events[0])


def _many(events: list[Event]) -> dict[str, Any]:
    return {"data": [event_view(e) for e in events]}


async def create_event(request: web.Request) -> web.Response:
    body = await read_json(request)
    answer = await request.app[GATEWAY].ingest(
        principal(request), request.match_info["app_id"], [body], _idempotency_key(request), _one
    )
    return json_response(answer, status=202)


async def create_events(request: web.Request) -> web.Response:
    body = validate_request("event_batch", await read_json(request))
    answer = await request.app[GATEWAY].ingest(
        principal(request),
        request.match_info["app_id"],
        body["events"],
        _idempotency_key(request),
        _many,
    )
    return json_response(answer, status=202)


async def list_events(request: web.Request) -> web.Response:
    limit = page_size(request)
    filters = EventFilter(
        type=request.query.get("type") or None,
        job_id=request.query.get("job_id") or None,
        since=query_time(request, "since"),
        until=query_time(request, "until"),
    )
    events = await request.app[GATEWAY].list_events(
        principal(request), request.match_info["app_id"], filters, cursor(request), limit
    )
    return json_response(page([event_view(e) for e in events], limit))


async def get_event(request: web.Request) -> web.Response:
    event, deliveries = await request.app[GATEWAY].get_event(
        principal(request), request.match_info["app_id"], request.match_info["event_id"]
    )
    return json_response(
        {**event_view(event), "deliveries": [delivery_view(d) for d in deliveries]}
    )
