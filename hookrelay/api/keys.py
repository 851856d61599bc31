"""Typed keys for what the API keeps on the application and on each request."""

from __future__ import annotations

from aiohttp import web

from hookrelay.broker import Broker
from hookrelay.gateway import Gateway, Principal
from hookrelay.live.feed import LiveFeed
from hookrelay.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
GATEWAY = web.AppKey("gateway", Gateway)
BROKER = web.AppKey("broker", Broker)
LIVE_FEED = web.AppKey("live_feed", LiveFeed)
PRINCIPAL = web.RequestKey("principal", Principal)
