"""Credentials: app keys (create, shown once; list, by prefix; revoke), portal sessions (open,
shown once; end all), and the caller's own (GET /v1/me)."""

from __future__ import annotations

from aiohttp import web

from hookrelay.api.handlers.pages import CONSOLE_PATH
from hookrelay.api.http import (
    cursor,
    json_response,
    page,
    page_size,
    principal,
    read_json,
    read_optional_json,
    secret_response,
)
from hookrelay.api.state import APP_ID, APPS, SETTINGS, STORAGE
from hookrelay.api.views import api_key_view, portal_session_view


async def create_key(request: web.Request) -> web.Response:
    created, key = await request.app[APPS].create_app_key(
        principal(request), request[APP_ID], await read_json(request)
    )
    return secret_response({**api_key_view(created), "key": key}, status=201)


async def list_keys(request: web.Request) -> web.Response:
    limit = page_size(request)
    keys = await request.app[STORAGE].apps.list_keys(request[APP_ID], cursor(request), limit)
    return json_response(page([api_key_view(k) for k in keys], limit))


async def revoke_key(request: web.Request) -> web.Response:
    revoked = await request.app[APPS].revoke_app_key(
        principal(request), request[APP_ID], request.match_info["key_id"]
    )
    return json_response(api_key_view(revoked))


async def open_portal_session(request: web.Request) -> web.Response:
    session, token = await request.app[APPS].open_portal_session(
        principal(request), request[APP_ID], await read_optional_json(request)
    )
    # The token travels in the fragment, which browsers never send: it stays out of access
    # logs, proxies and Referer headers.
    url = f"{console_base(request)}{CONSOLE_PATH}#token={token}"
    return secret_response({**portal_session_view(session), "url": url, "token": token}, 201)


async def me(request: web.Request) -> web.Response:
    caller = principal(request)
    return json_response(
        {
            "kind": caller.kind,
            "app_id": caller.app_id,
            "grants": sorted(caller.grants),
            "expires_at": caller.expires_at,
        }
    )


async def end_portal_sessions(request: web.Request) -> web.Response:
    ended = await request.app[APPS].end_portal_sessions(request[APP_ID])
    return json_response({"ended": ended})


def console_base(request: web.Request) -> str:
    """Where users reach this API: HOOKRELAY_PUBLIC_URL, else the scheme and host the request
    was made to (behind a proxy that forwards neither as the client sent them, set the
    variable)."""
    public_url = request.app[SETTINGS].public_url
    return public_url or f"{request.scheme}://{request.host}"
