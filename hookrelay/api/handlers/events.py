"""Events: ingest (one, or a batch; idempotent with Idempotency-Key), list (or long-poll), get."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hookrelay.api.http import (
    MAX_WAIT_S,
    client_gone,
    cursor,
    json_response,
    log_cursor,
    page,
    page_size,
    parse_log_cursor,
    query_event_type,
    query_job_id,
    query_time,
    read_json,
    seconds_param,
)
from hookrelay.api.state import APP_ID, INGEST, LIVE_FEED, SETTINGS, STORAGE
from hookrelay.api.views import delivery_view, event_view
from hookrelay.errors import BadRequest
from hookrelay.ids import is_id
from hookrelay.models import Event, EventFilter, LogFilter, LogPosition
from hookrelay.schemas import validate_request
from hookrelay.services.event_log import log_start

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
    answer = await request.app[INGEST].ingest(
        request[APP_ID], [body], _idempotency_key(request), _one
    )
    return json_response(answer, status=202)


async def create_events(request: web.Request) -> web.Response:
    body = validate_request("event_batch", await read_json(request))
    answer = await request.app[INGEST].ingest(
        request[APP_ID], body["events"], _idempotency_key(request), _many, batch=True
    )
    return json_response(answer, status=202)


async def list_events(request: web.Request) -> web.Response:
    if "after" in request.query or "wait" in request.query:
        return await _follow_events(request)
    limit = page_size(request)
    filters = EventFilter(
        type=query_event_type(request, "type"),
        job_id=query_job_id(request),
        since=query_time(request, "since"),
        until=query_time(request, "until"),
    )
    events = await request.app[STORAGE].events.list(
        request[APP_ID], filters, cursor(request), limit
    )
    return json_response(page([event_view(e) for e in events], limit))


async def _follow_events(request: web.Request) -> web.Response:
    """The long-poll: events after `after` (an event id, or the cursor of the last answer) in
    commit order, oldest first; if there are none yet, wait up to `wait` seconds for some.
    Without `after`: from now, or with `job_id`, from that job's first event. The answer's
    next_cursor continues exactly where it ends, so polling misses nothing."""
    for name in ("cursor", "since", "until"):
        if name in request.query:
            raise BadRequest(f"{name} cannot be combined with after or wait")
    limit = page_size(request)
    wait_s = seconds_param(request, "wait", MAX_WAIT_S)
    event_type = query_event_type(request, "type")
    filters = LogFilter(
        types=None if event_type is None else frozenset([event_type]),
        job_id=query_job_id(request),
    )
    after = request.query.get("after") or None
    app_id, settings = request[APP_ID], request.app[SETTINGS]
    resumed: LogPosition | str | None = after
    if after is not None and not is_id(after, "evt_"):
        resumed = parse_log_cursor(settings, app_id, after)  # a cursor is for one app
    if isinstance(resumed, tuple):
        position = resumed
    else:  # an event id: where it stands in this app's log
        position = await log_start(request.app[STORAGE].events, app_id, resumed, filters.job_id)
    feed = request.app[LIVE_FEED]
    async with feed.follow(app_id) as tail:
        read = await feed.read(tail, position, filters, limit, wait_s, client_gone(request))
    return json_response(
        {
            "data": [event_view(e) for e in read.events],
            "next_cursor": log_cursor(settings, app_id, read.position),
        }
    )


async def get_event(request: web.Request) -> web.Response:
    storage = request.app[STORAGE]
    event = await storage.events.get(request[APP_ID], request.match_info["event_id"])
    deliveries = await storage.deliveries.of_event(event.id)
    return json_response(
        {**event_view(event), "deliveries": [delivery_view(d) for d in deliveries]}
    )
