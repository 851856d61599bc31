"""App keys: create (shown once), list (prefix only), revoke."""

from __future__ import annotations

from aiohttp import web

from hookrelay.api.http import cursor, json_response, page, page_size, read_json, secret_response
from hookrelay.api.state import APP_ID, APPS, STORAGE
from hookrelay.api.views import api_key_view


async def create_key(request: web.Request) -> web.Response:
    created, key = await request.app[APPS].create_app_key(request[APP_ID], await read_json(request))
    return secret_response({**api_key_view(created), "key": key}, status=201)


async def list_keys(request: web.Request) -> web.Response:
    limit = page_size(request)
    keys = await request.app[STORAGE].apps.list_keys(request[APP_ID], cursor(request), limit)
    return json_response(page([api_key_view(k) for k in keys], limit))


async def revoke_key(request: web.Request) -> web.Response:
    revoked = await request.app[APPS].revoke_app_key(request[APP_ID], request.match_info["key_id"])
    return json_response(api_key_view(revoked))
