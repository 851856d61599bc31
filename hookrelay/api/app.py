"""The aiohttp application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web
from aiohttp.abc import AbstractResolver

from hookrelay.api.keys import GATEWAY, LIVE_FEED, SETTINGS
from hookrelay.api.middleware import auth_middleware, error_middleware, path_middleware
from hookrelay.api.routes import add_routes
from hookrelay.gateway import Gateway
from hookrelay.live.feed import LiveFeed
from hookrelay.live.notify import log_channel
from hookrelay.queue import DeliveryQueue
from hookrelay.settings import Settings
from hookrelay.store import Store

# Room for headers and framing above the payload limit; the payload limit itself is checked
# by read_json, so an oversized body gets our 413 shape.
BODY_SLACK_BYTES = 64 * 1024


def create_app(settings: Settings, resolver: AbstractResolver | None = None) -> web.Application:
    """Return the API application; Postgres and Redis are opened on startup, closed on cleanup."""
    app = web.Application(
        middlewares=[error_middleware, auth_middleware, path_middleware],
        client_max_size=settings.max_payload_bytes + BODY_SLACK_BYTES,
    )
    app[SETTINGS] = settings
    add_routes(app, demo_page=settings.demo_page)
    app.cleanup_ctx.append(partial(_gateway_ctx, resolver=resolver))
    app.on_shutdown.append(_end_streams)
    return app


async def _end_streams(app: web.Application) -> None:
    """Before the server waits for requests to finish: streams and long-polls end now (their
    clients reconnect elsewhere, resuming where they were) instead of holding shutdown up."""
    await app[LIVE_FEED].close()


async def _gateway_ctx(
    app: web.Application, resolver: AbstractResolver | None
) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = await Store.open(settings.require_database_url())
    queue = DeliveryQueue.connect(
        settings.require_redis_url(), settings.queue_name, settings.retry_queue_name
    )
    box = settings.secret_box()
    app[GATEWAY] = gateway = Gateway(settings, store, queue, box, resolver)
    app[LIVE_FEED] = feed = LiveFeed(
        store,
        settings.require_redis_url(),
        log_channel(settings.queue_name),
        settings.max_streams_per_app,
    )
    try:
        yield
    finally:
        await feed.close()
        await gateway.notifier.close()
        await queue.close()
        await store.close()
