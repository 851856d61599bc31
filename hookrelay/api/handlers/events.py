"""Events: ingest, list, get with per-endpoint delivery state."""

from __future__ import annotations

from aiohttp import web

from hookrelay.api.http import cursor, json_response, page, page_size, principal, read_json
from hookrelay.api.keys import GATEWAY
from hookrelay.api.views import delivery_view, event_view


async def create_event(request: web.Request) -> web.Response:
    event = await request.app[GATEWAY].ingest_event(
        principal(request), request.match_info["app_id"], await read_json(request)
    )
    return json_response(event_view(event), status=202)


async def list_events(request: web.Request) -> web.Response:
    limit = page_size(request)
    events = await request.app[GATEWAY].list_events(
        principal(request),
        request.match_info["app_id"],
        cursor(request),
        request.query.get("type") or None,
        limit,
    )
    return json_response(page([event_view(e) for e in events], limit))


async def get_event(request: web.Request) -> web.Response:
    event, deliveries = await request.app[GATEWAY].get_event(
        principal(request), request.match_info["app_id"], request.match_info["event_id"]
    )
    return json_response(
        {**event_view(event), "deliveries": [delivery_view(d) for d in deliveries]}
    )
