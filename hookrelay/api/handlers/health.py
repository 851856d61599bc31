"""Health: the process is up (/healthz); its dependencies answer (/readyz)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from hookrelay.api.http import json_response
from hookrelay.api.state import BROKER, OPENAPI, STORAGE
from hookrelay.errors import DependencyUnavailable

READY_CHECK_TIMEOUT_S = 2.0


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def openapi(request: web.Request) -> web.Response:
    return json_response(request.app[OPENAPI])


async def readyz(request: web.Request) -> web.Response:
    checks = {"postgres": request.app[STORAGE].ping(), "redis": request.app[BROKER].ping()}
    results = {}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check, READY_CHECK_TIMEOUT_S)
            results[name] = "ok"
        except (DependencyUnavailable, TimeoutError):
            results[name] = "unavailable"
    ready = all(value == "ok" for value in results.values())
    return json_response(
        {"status": "ok" if ready else "unavailable", "checks": results}, 200 if ready else 503
    )
