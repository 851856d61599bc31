"""GET /metrics: the workers' delivery metrics (summed in Redis) and the queue lag (Postgres)."""

from __future__ import annotations

import hmac

from aiohttp import web

from hookrelay.api.http import bearer_token
from hookrelay.api.state import BROKER, SETTINGS, STORAGE
from hookrelay.errors import Unauthorized
from hookrelay.metrics import render


async def metrics(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    _check_metrics_token(request, settings.metrics_token)
    samples = await request.app[BROKER].metrics.read()
    lag = await request.app[STORAGE].maintenance.oldest_due_age()
    return web.Response(
        text=render(samples, lag),
        content_type="text/plain",
        charset="utf-8",
    )


def _check_metrics_token(request: web.Request, metrics_token: str | None) -> None:
    """With HOOKRELAY_METRICS_TOKEN set, only its bearer may read the metrics."""
    if metrics_token is None:
        return
    token = bearer_token(request)
    # Compared in constant time.
    if token is None or not hmac.compare_digest(token.encode(), metrics_token.encode()):
        raise Unauthorized("send Authorization: Bearer <HOOKRELAY_METRICS_TOKEN>")
