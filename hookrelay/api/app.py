"""The aiohttp application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver

from hookrelay.api.middleware import auth_middleware, error_middleware, path_middleware
from hookrelay.api.openapi import openapi_document
from hookrelay.api.routes import add_routes
from hookrelay.api.state import (
    APPS,
    AUTH,
    BROKER,
    ENDPOINTS,
    INGEST,
    LIVE_FEED,
    OPENAPI,
    REPLAYS,
    SETTINGS,
    STORAGE,
)
from hookrelay.broker import Broker, EnqueueCoalescer
from hookrelay.live.feed import LiveFeed
from hookrelay.services.apps import Apps
from hookrelay.services.auth import Auth
from hookrelay.services.endpoints import Endpoints
from hookrelay.services.enqueue import Enqueuer
from hookrelay.services.ingest import Ingest
from hookrelay.services.replay import Replays
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
    app[OPENAPI] = openapi_document()
    add_routes(app, demo_page=settings.demo_page)
    app.cleanup_ctx.append(partial(_services_ctx, resolver=resolver))
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


async def _services_ctx(
    app: web.Application, resolver: AbstractResolver | None
) -> AsyncIterator[None]:
    """Open Postgres and Redis, and build the services on them; close all on cleanup."""
    settings = app[SETTINGS]
    app[STORAGE] = storage = await Storage.open(
        settings.require_database_url(),
        retention_s=settings.retention_s,
        partition_interval_s=settings.partition_interval_s,
    )
    app[BROKER] = broker = Broker(settings.require_redis_url(), settings.queue_name)
    enqueuer = Enqueuer(broker.queue, EnqueueCoalescer(broker.queue))
    notifier = broker.notices.commit_notifier()
    app[AUTH] = auth = Auth(settings, storage.apps, broker.notices.announce_revocation)
    app[APPS] = Apps(storage.apps, auth.revoked)
    app[ENDPOINTS] = Endpoints(
        settings, storage.endpoints, settings.secret_box(), resolver or DefaultResolver(), enqueuer
    )
    app[INGEST] = Ingest(storage.events, enqueuer, notifier)
    app[REPLAYS] = Replays(storage.deliveries, storage.endpoints, enqueuer)
    app[LIVE_FEED] = feed = LiveFeed(storage.events, broker.notices, settings.max_streams_per_app)
    # Revocations made through any API process reach this one's key cache at once.
    listening = asyncio.get_running_loop().create_task(
        broker.notices.follow_revocations(
            auth.keys.forget_app,
            auth.keys.clear,  # (re)subscribed: a notice may have been missed meanwhile
        )
    )
    try:
        yield
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
        await feed.close()
        await enqueuer.close()
        await notifier.close()
        await broker.close()
        await storage.close()
