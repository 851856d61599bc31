"""Endpoints: register (with a secret), list, get, change, delete, read the secret."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from hookrelay.api.http import (
    COUNT_CAP,
    capped,
    cursor,
    json_response,
    page,
    page_size,
    read_json,
    secret_response,
)
from hookrelay.api.state import APP_ID, ENDPOINTS, INGEST, SETTINGS, STORAGE
from hookrelay.api.views import endpoint_view, event_view
from hookrelay.ids import made_at
from hookrelay.services.endpoints import public_key_of


def _secret_view(secret: str) -> dict[str, str]:
    view = {"secret": secret}
    public_key = public_key_of(secret)
    if public_key is not None:
        view["public_key"] = public_key
    return view


async def create_endpoint(request: web.Request) -> web.Response:
    endpoint, secret = await request.app[ENDPOINTS].create_endpoint(
        request[APP_ID], await read_json(request)
    )
    return secret_response({**endpoint_view(endpoint), **_secret_view(secret)}, status=201)


async def list_endpoints(request: web.Request) -> web.Response:
    limit = page_size(request)
    endpoints = await request.app[STORAGE].endpoints.list(request[APP_ID], cursor(request), limit)
    return json_response(page([endpoint_view(e) for e in endpoints], limit))


async def get_endpoint(request: web.Request) -> web.Response:
    endpoint = await request.app[STORAGE].endpoints.get(
        request[APP_ID], request.match_info["endpoint_id"]
    )
    return json_response(endpoint_view(endpoint))


async def get_endpoint_secret(request: web.Request) -> web.Response:
    endpoint = await request.app[STORAGE].endpoints.get(
        request[APP_ID], request.match_info["endpoint_id"]
    )
    return secret_response(_secret_view(request.app[ENDPOINTS].secret_of(endpoint)))


async def rotate_secret(request: web.Request) -> web.Response:
    endpoint, secret = await request.app[ENDPOINTS].rotate_secret(
        request[APP_ID], request.match_info["endpoint_id"]
    )
    return secret_response({**endpoint_view(endpoint), **_secret_view(secret)})


async def update_endpoint(request: web.Request) -> web.Response:
    endpoint = await request.app[ENDPOINTS].update_endpoint(
        request[APP_ID], request.match_info["endpoint_id"], await read_json(request)
    )
    return json_response(endpoint_view(endpoint))


async def delete_endpoint(request: web.Request) -> web.Response:
    await request.app[ENDPOINTS].delete_endpoint(request[APP_ID], request.match_info["endpoint_id"])
    return web.Response(status=204)


async def send_example(request: web.Request) -> web.Response:
    event, delivery_id = await request.app[INGEST].send_example(
        request[APP_ID], request.match_info["endpoint_id"], await read_json(request)
    )
    return json_response({**event_view(event), "delivery_id": delivery_id}, status=202)


# An endpoint's attempts in a window are counted up to this many: a busy endpoint's day holds
# millions.
ATTEMPTS_COUNT_CAP = 100_000


async def endpoint_stats(request: web.Request) -> web.Response:
    storage = request.app[STORAGE]
    endpoint = await storage.endpoints.get(request[APP_ID], request.match_info["endpoint_id"])
    retry_span_s = sum(request.app[SETTINGS].retry_schedule_s)
    found = await storage.endpoints.stats(
        endpoint.id, datetime.now(UTC), retry_span_s, COUNT_CAP, ATTEMPTS_COUNT_CAP
    )
    oldest = found["oldest_waiting"]
    return json_response(
        {
            "endpoint_id": endpoint.id,
            "failing_since": found["failing_since"],
            "last_hour": _rate(found["hour_attempts"], found["hour_succeeded"]),
            "last_day": _rate(found["day_attempts"], found["day_succeeded"]),
            "waiting": {
                **capped(found["waiting"]),
                "oldest_id": oldest,
                "oldest_at": None if oldest is None else made_at(oldest),
            },
            "lost": capped(found["lost"]),
        }
    )


def _rate(attempts: int, succeeded: int) -> dict[str, Any]:
    """A window's attempts, counted up to ATTEMPTS_COUNT_CAP (and one more: then the rate is
    of those counted)."""
    counted = min(attempts, ATTEMPTS_COUNT_CAP)
    return {
        "attempts": counted,
        "more": attempts > ATTEMPTS_COUNT_CAP,
        "succeeded": min(succeeded, counted),
        "success_rate": None if counted == 0 else round(min(succeeded, counted) / counted, 4),
    }
