"""Endpoints: register (with a secret), list, get, change, delete, read the secret."""

from __future__ import annotations

from aiohttp import web

from hookrelay import signing
from hookrelay.api.http import (
    cursor,
    json_response,
    page,
    page_size,
    principal,
    read_json,
    secret_response,
)
from hookrelay.api.keys import GATEWAY
from hookrelay.api.views import endpoint_view


def _secret_view(secret: str) -> dict[str, str]:
    view = {"secret": secret}
    if secret.startswith(signing.ED25519_SECRET_PREFIX):
        view["public_key"] = signing.public_key_of(secret)
    return view


async def create_endpoint(request: web.Request) -> web.Response:
    endpoint, secret = await request.app[GATEWAY].create_endpoint(
        principal(request), request.match_info["app_id"], await read_json(request)
    )
    return secret_response({**endpoint_view(endpoint), **_secret_view(secret)}, status=201)


async def list_endpoints(request: web.Request) -> web.Response:
    limit = page_size(request)
    endpoints = await request.app[GATEWAY].list_endpoints(
        principal(request), request.match_info["app_id"], cursor(request), limit
    )
    return json_response(page([endpoint_view(e) for e in endpoints], limit))


async def get_endpoint(request: web.Request) -> web.Response:
    endpoint = await request.app[GATEWAY].get_endpoint(
        principal(request), request.match_info["app_id"], request.match_info["endpoint_id"]
    )
    return json_response(endpoint_view(endpoint))


async def get_endpoint_secret(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    endpoint = await gateway.get_endpoint(
        principal(request), request.match_info["app_id"], request.match_info["endpoint_id"]
    )
    return secret_response(_secret_view(gateway.endpoint_secret(endpoint)))


async def rotate_secret(request: web.Request) -> web.Response:
    endpoint, secret = await request.app[GATEWAY].rotate_secret(
        principal(request), request.match_info["app_id"], request.match_info["endpoint_id"]
    )
    return secret_response({**endpoint_view(endpoint), **_secret_view(secret)})


async def update_endpoint(request: web.Request) -> web.Response:
    endpoint = await request.app[GATEWAY].update_endpoint(
        principal(request),
        request.match_info["app_id"],
        request.match_info["endpoint_id"],
        await read_json(request),
    )
    return json_response(endpoint_view(endpoint))


async def delete_endpoint(request: web.Request) -> web.Response:
    await request.app[GATEWAY].delete_endpoint(
        principal(request), request.match_info["app_id"], request.match_info["endpoint_id"]
    )
    return web.Response(status=204)
