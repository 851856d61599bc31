"""GET /metrics: the workers' delivery metrics (summed in Redis) and the queue lag (Postgres)."""

from __future__ import annotations

from aiohttp import web

from hookrelay.api.keys import GATEWAY
from hookrelay.errors import DependencyUnavailable
from hookrelay.metrics import metrics_key, render


async def metrics(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    try:
        # redis-py types hgetall as sync-or-async; on the asyncio client it is a coroutine.
        raw: dict[bytes, bytes] = await gateway.queue.redis.hgetall(  # type: ignore[misc]
            metrics_key(gateway.settings.queue_name)
        )
    except Exception as exc:
        raise DependencyUnavailable("redis is unreachable") from exc
    samples = {field.decode(): float(value) for field, value in raw.items()}
    lag = await gateway.store.oldest_due_age()
    return web.Response(
        text=render(samples, lag),
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )
