"""Apps: create (with a first key), list, get, change, delete."""

from __future__ import annotations

from aiohttp import web

from hookrelay.api.http import (
    COUNT_CAP,
    capped,
    cursor,
    json_response,
    page,
    page_size,
    principal,
    read_json,
    secret_response,
)
from hookrelay.api.state import APP_ID, APPS, STORAGE
from hookrelay.api.views import app_view


async def create_app(request: web.Request) -> web.Response:
    app, key = await request.app[APPS].create_app(principal(request), await read_json(request))
    return secret_response({**app_view(app), "api_key": key}, status=201)


async def list_apps(request: web.Request) -> web.Response:
    limit = page_size(request)
    apps = await request.app[APPS].list_apps(principal(request), cursor(request), limit)
    return json_response(page([app_view(a) for a in apps], limit))


async def get_app(request: web.Request) -> web.Response:
    app = await request.app[STORAGE].apps.get(request[APP_ID])
    return json_response(app_view(app))


async def update_app(request: web.Request) -> web.Response:
    app = await request.app[APPS].update_app(request[APP_ID], await read_json(request))
    return json_response(app_view(app))


async def delete_app(request: web.Request) -> web.Response:
    await request.app[APPS].delete_app(request[APP_ID])
    return web.Response(status=204)


async def app_summary(request: web.Request) -> web.Response:
    found = await request.app[STORAGE].apps.summary(request[APP_ID], COUNT_CAP)
    return json_response(
        {
            "app_id": request[APP_ID],
            "endpoints": {
                name: found[name] for name in ("total", "active", "paused", "disabled", "failing")
            },
            "lost": capped(found["lost"]),
        }
    )
