"""Deliveries: list with filters, get with attempts, replay one or many; attempts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from hookrelay.api.http import (
    cursor,
    json_response,
    page,
    page_size,
    query_choice,
    query_event_type,
    query_flag,
    query_id,
    query_job_id,
    query_time,
    read_optional_json,
)
from hookrelay.api.state import APP_ID, REPLAYS, STORAGE
from hookrelay.api.views import attempt_view, delivery_view
from hookrelay.durations import parse_moment
from hookrelay.errors import InvalidPayload
from hookrelay.models import AttemptFilter, DeliveryFilter, ReplayResult
from hookrelay.schemas import validate_request
from hookrelay.statuses import DeliveryStatus


def replay_view(result: ReplayResult) -> dict[str, int]:
    return {
        "matched": result.matched,
        "replayed": result.replayed,
        "replayable": result.replayable,
    }


async def list_deliveries(request: web.Request) -> web.Response:
    filters = DeliveryFilter(
        status=query_choice(request, "status", DeliveryStatus),
        endpoint_id=query_id(request, "endpoint_id", "ep_"),
        event_type=query_event_type(request, "event_type"),
        event_id=query_id(request, "event_id", "evt_"),
        job_id=query_job_id(request),
        since=query_time(request, "since"),
        until=query_time(request, "until"),
        lost=query_flag(request, "lost"),
    )
    limit = page_size(request)
    deliveries = await request.app[STORAGE].deliveries.list(
        request[APP_ID], filters, cursor(request), limit
    )
    return json_response(page([delivery_view(d) for d in deliveries], limit))


async def get_delivery(request: web.Request) -> web.Response:
    storage = request.app[STORAGE]
    delivery = await storage.deliveries.get(request[APP_ID], request.match_info["delivery_id"])
    attempts = await storage.deliveries.attempts(delivery.id)
    return json_response(
        {**delivery_view(delivery), "attempts": [attempt_view(a) for a in attempts]}
    )


async def replay_delivery(request: web.Request) -> web.Response:
    new_id, original = await request.app[REPLAYS].replay_delivery(
        request[APP_ID], request.match_info["delivery_id"]
    )
    return json_response({"id": new_id, "replay_of": original}, 202)


def _replay_filter(body: dict[str, Any], now: datetime, **fixed: Any) -> DeliveryFilter:
    since, until = _moment(body, "since", now), _moment(body, "until", now)
    if since is not None and until is not None and until <= since:
        # A replay of nothing is a mistake (the bounds swapped, "1h" for "10m"): say so, where a
        # listing would answer an empty page.
        raise InvalidPayload(
            "until must be later than since",
            [
                {
                    "path": "$.until",
                    "message": f"{until.isoformat()} is not after {since.isoformat()}",
                }
            ],
        )
    return DeliveryFilter(
        status=fixed.get("status", DeliveryStatus(body.get("status", DeliveryStatus.DEAD))),
        endpoint_id=fixed.get("endpoint_id", body.get("endpoint_id")),
        event_type=body.get("event_type"),
        since=since,
        until=until,
    )


def _moment(body: dict[str, Any], name: str, now: datetime) -> datetime | None:
    """A window's bound: an RFC 3339 time, or a duration meaning that long ago."""
    if name not in body:
        return None
    try:
        return parse_moment(body[name], now)
    except ValueError as exc:
        raise InvalidPayload(
            f"{name} must be an RFC 3339 time or a duration ago",
            [{"path": f"$.{name}", "message": str(exc)}],
        ) from exc


async def replay_deliveries(request: web.Request) -> web.Response:
    body = validate_request("replay", await read_optional_json(request))
    result = await request.app[REPLAYS].replay_deliveries(
        request[APP_ID],
        _replay_filter(body, datetime.now(UTC)),
        bool(body.get("dry_run", False)),
        bool(body.get("include_replayed", False)),
    )
    return json_response(replay_view(result), 202)


async def recover_endpoint(request: web.Request) -> web.Response:
    body = validate_request("recover", await read_optional_json(request))  # bare: 422 naming since
    endpoint_id = request.match_info["endpoint_id"]
    filters = _replay_filter(
        body, datetime.now(UTC), status=DeliveryStatus.DEAD, endpoint_id=endpoint_id
    )
    result = await request.app[REPLAYS].replay_deliveries(
        request[APP_ID],
        filters,
        bool(body.get("dry_run")),
        bool(body.get("include_replayed", False)),
    )
    return json_response(replay_view(result), 202)


async def list_attempts(request: web.Request) -> web.Response:
    filters = AttemptFilter(
        delivery_id=query_id(request, "delivery_id", "dlv_"),
        endpoint_id=query_id(request, "endpoint_id", "ep_"),
        since=query_time(request, "since"),
        until=query_time(request, "until"),
    )
    limit = page_size(request)
    attempts = await request.app[STORAGE].deliveries.list_attempts(
        request[APP_ID], filters, cursor(request), limit
    )
    return json_response(page([attempt_view(a) for a in attempts], limit))
