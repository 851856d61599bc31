"""GET /metrics: the workers' delivery metrics (summed in Redis) and the queue lag (Postgres)."""

from __future__ import annotations

import hmac

from aiohttp import web

from hookrelay.api.http import bearer_token
from hookrelay.api.keys import GATEWAY
from hookrelay.errors import DependencyUnavailable, Unauthorized
from hookrelay.metrics import metrics_key, render


async def metrics(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    _check_metrics_token(request, gateway.settings.metrics_token)
    try:
        # redis-py types hgetall as sync-or-async; on the asyncio client it is a coroutine.
        raw: dict[bytes, bytes] = await gateway.queue.redis.hgetall(  # type: ignore[misc]
            metrics_key(gateway.settings.queue_name)
        )
    except Exception as exc:
        raise DependencyUnavailable("redis is unreachable") from exc
    samples = {field.decode(): float(value) for field, value in raw.items()}
    lag = await gateway.storage.maintenance.oldest_due_age()
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
