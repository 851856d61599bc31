"""The aiohttp application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web
from aiohttp.abc import AbstractResolver

from hookrelay.api.keys import GATEWAY, LIVE_FEED, SETTINGS
from hookrelay.api.middleware import auth_middleware, error_middleware, path_middleware
from hookrelay.api.routes import add_routes
from hookrelay.gateway import Gateway
from hookrelay.live.feed import LiveFeed
from hookrelay.live.notify import listen, log_channel
from hookrelay.queue import DeliveryQueue
from hookrelay.settings import Settings
from hookrelay.storage import Storage

# Room for headers and framing above the payload limit; the payload limit itself is checked
# by read_json, so an oversized body gets our 413 shape.
BODY_SLACK_BYTES = 64 * 1024
# aiohttp would send "Python/3.x aiohttp/3.x": versions help nobody but an attacker.
SERVER_NAME = "hookrelay"


def create_app(settings: Settings, resolver: AbstractResolver | None = None) -> web.Application:
    """Return the API application; Postgres and Redis are opened on startup, closed on cleanup."""
    app = web.Application(
        middlewares=[error_middleware, path_middleware, auth_middleware],
        client_max_size=settings.max_payload_bytes + BODY_SLACK_BYTES,
    )
    app[SETTINGS] = settings
    add_routes(app, demo_page=settings.demo_page)
    app.cleanup_ctx.append(partial(_gateway_ctx, resolver=resolver))
    app.on_shutdown.append(_end_streams)
    app.on_response_prepare.append(_common_headers)
    return app


async def _common_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Headers of every answer the app gives (this also covers errors, unknown routes and
    streams); hookrelay.api.server sets them on the answers to requests that never reach it."""
    set_common_headers(response)


def set_common_headers(response: web.StreamResponse) -> None:
    """No content sniffing, and a Server header that tells no versions."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Server"] = SERVER_NAME


async def _end_streams(app: web.Application) -> None:
    """Before the server waits for requests to finish: streams and long-polls end now (their
    clients reconnect elsewhere, resuming where they were) instead of holding shutdown up."""
    await app[LIVE_FEED].close()


async def _gateway_ctx(
    app: web.Application, resolver: AbstractResolver | None
) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    storage = await Storage.open(settings.require_database_url())
    queue = DeliveryQueue.connect(
        settings.require_redis_url(), settings.queue_name, settings.retry_queue_name
    )
    box = settings.secret_box()
    app[GATEWAY] = gateway = Gateway(settings, storage, queue, box, resolver)
    app[LIVE_FEED] = feed = LiveFeed(
        storage.events,
        settings.require_redis_url(),
        log_channel(settings.queue_name),
        settings.max_streams_per_app,
    )
    # Revocations made through any API process reach this one's key cache at once.
    revocations = asyncio.get_running_loop().create_task(
        listen(
            settings.require_redis_url(),
            gateway.revocation_channel,
            gateway.keys.forget_app,
            gateway.keys.clear,  # (re)subscribed: a notice may have been missed meanwhile
        )
    )
    try:
        yield
    finally:
        revocations.cancel()
        await asyncio.gather(revocations, return_exceptions=True)
        await feed.close()
        await gateway.notifier.close()
        await queue.close()
        await storage.close()
