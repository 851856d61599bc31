"""Typed keys for what the API keeps on the application and on each request."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from hookrelay.broker import Broker
from hookrelay.live.feed import LiveFeed
from hookrelay.services.access import Grant
from hookrelay.services.apps import Apps
from hookrelay.services.auth import Auth, Principal
from hookrelay.services.endpoints import Endpoints
from hookrelay.services.ingest import Ingest
from hookrelay.services.replay import Replays
from hookrelay.settings import Settings
from hookrelay.storage import Storage

SETTINGS = web.AppKey("settings", Settings)
STORAGE = web.AppKey("storage", Storage)
BROKER = web.AppKey("broker", Broker)
AUTH = web.AppKey("auth", Auth)
APPS = web.AppKey("apps", Apps)
ENDPOINTS = web.AppKey("endpoints", Endpoints)
INGEST = web.AppKey("ingest", Ingest)
REPLAYS = web.AppKey("replays", Replays)
LIVE_FEED = web.AppKey("live_feed", LiveFeed)
# What each route's handler needs granted (Route.needs), for the auth middleware.
ROUTE_NEEDS = web.AppKey("route_needs", dict[Any, tuple[Grant, ...]])
# The OpenAPI document, built once from the route table (which names the handler serving it).
OPENAPI = web.AppKey("openapi", dict[str, Any])
# Set by the auth middleware on every /v1 request: who is calling, and the id of the app the
# path names (resolved once from its id or uid, and only if the caller may see it).
PRINCIPAL = web.RequestKey("principal", Principal)
APP_ID = web.RequestKey("app_id", str)
# Made by `client_gone` for a handler that waits for news, and done by the server's connection
# handler when the client's connection closes.
CLIENT_GONE = web.RequestKey("client_gone", asyncio.Future[None])
