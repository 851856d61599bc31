"""Deliveries: list with filters, get with attempts."""

from __future__ import annotations

from aiohttp import web

from hookrelay.api.http import cursor, json_response, page, page_size, principal
from hookrelay.api.keys import GATEWAY
from hookrelay.api.views import attempt_view, delivery_view
from hookrelay.errors import BadRequest
from hookrelay.gateway import DeliveryFilter

DELIVERY_STATUSES = ("pending", "sending", "retrying", "succeeded", "dead", "held", "cancelled")


async def list_deliveries(request: web.Request) -> web.Response:
    status = request.query.get("status") or None
    if status is not None and status not in DELIVERY_STATUSES:
        raise BadRequest(f"status must be one of {', '.join(DELIVERY_STATUSES)}")
    filters = DeliveryFilter(
        status=status,
        endpoint_id=request.query.get("endpoint_id") or None,
        event_id=request.query.get("event_id") or None,
    )
    limit = page_size(request)
    deliveries = await request.app[GATEWAY].list_deliveries(
        principal(request), request.match_info["app_id"], cursor(request), filters, limit
    )
    return json_response(page([delivery_view(d) for d in deliveries], limit))


async def get_delivery(request: web.Request) -> web.Response:
    delivery, attempts = await request.app[GATEWAY].get_delivery(
        principal(request), request.match_info["app_id"], request.match_info["delivery_id"]
    )
    return json_response(
        {**delivery_view(delivery), "attempts": [attempt_view(a) for a in attempts]}
    )
