"""The auth middleware on the in-memory fakes: every /v1 request gets its principal and the id
of the app its path names, resolved once; what may not be seen answers 404, who is unknown 401,
who lacks what the route needs 403."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hookrelay.api.http import json_response
from hookrelay.api.middleware import (
    STREAM_ROUTE,
    auth_middleware,
    error_middleware,
    path_middleware,
)
from hookrelay.api.state import APP_ID, AUTH, PRINCIPAL, ROUTE_NEEDS
from hookrelay.services.access import Grant
from hookrelay.services.auth import ADMIN, new_app_key
from tests.unit.services.conftest import ADMIN_TOKEN, Rig

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(
    rig: Rig, aiohttp_client: Callable[[web.Application], Awaitable[Client]]
) -> Client:
    """An app of two routes that answer what the middleware left on the request."""

    async def echo(request: web.Request) -> web.Response:
        principal = request[PRINCIPAL]
        return json_response({"app_id": request[APP_ID], "caller": principal.app_id})

    async def stream_echo(request: web.Request) -> web.Response:
        return await echo(request)

    app = web.Application(middlewares=[error_middleware, path_middleware, auth_middleware])
    app[AUTH] = rig.auth
    app[ROUTE_NEEDS] = {echo: (Grant.READ,), stream_echo: (Grant.READ_EVENTS,)}
    app.router.add_get("/v1/apps/{app_id}/things", echo)
    app.router.add_get("/v1/apps/{app_id}/events/stream", stream_echo, name=STREAM_ROUTE)
    return await aiohttp_client(app)


async def get(client: Client, path: str, token: str | None = None) -> tuple[int, Any]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    response = await client.get(path, headers=headers)
    return response.status, await response.json()


def app_with_key(
    rig: Rig, name: str = "acme", uid: str | None = None, scopes: list[str] | None = None
) -> tuple[str, str]:
    app, key = rig.store.add_app(name, uid), new_app_key()
    rig.store.add_key(app.id, key, scopes)
    return app.id, key


async def test_an_app_key_reaches_its_own_app_by_id_with_no_app_query(
    rig: Rig, client: Client
) -> None:
    app_id, key = app_with_key(rig)
    assert await get(client, f"/v1/apps/{app_id}/things", key) == (
        200,
        {"app_id": app_id, "caller": app_id},
    )
    assert "get_app" not in rig.store.calls


async def test_a_uid_is_resolved_to_the_apps_id_for_the_handler(rig: Rig, client: Client) -> None:
    app_id, key = app_with_key(rig, uid="acme")
    status, body = await get(client, "/v1/apps/acme/things", key)
    assert (status, body["app_id"]) == (200, app_id)


async def test_another_apps_resources_answer_404_for_an_app_key(rig: Rig, client: Client) -> None:
    _, key = app_with_key(rig, "mine")
    theirs, _ = app_with_key(rig, "theirs", uid="theirs")
    for ref in (theirs, "theirs"):
        status, body = await get(client, f"/v1/apps/{ref}/things", key)
        assert (status, body["error"]["code"]) == (404, "not_found")


async def test_the_admin_reaches_any_app_and_a_missing_one_is_404(rig: Rig, client: Client) -> None:
    app_id, _ = app_with_key(rig, uid="acme")
    status, body = await get(client, "/v1/apps/acme/things", ADMIN_TOKEN)
    assert (status, body) == (200, {"app_id": app_id, "caller": None})
    status, _ = await get(client, "/v1/apps/nope/things", ADMIN_TOKEN)
    assert status == 404


async def test_no_token_or_an_unknown_one_is_401(rig: Rig, client: Client) -> None:
    app_id, _ = app_with_key(rig)
    for token in (None, new_app_key()):
        status, body = await get(client, f"/v1/apps/{app_id}/things", token)
        assert (status, body["error"]["code"]) == (401, "unauthorized")


async def test_a_stream_token_opens_the_stream_of_its_app(rig: Rig, client: Client) -> None:
    app_id, _ = app_with_key(rig)
    token, _ = rig.auth.issue_stream_token(app_id, {}, ADMIN)
    status, body = await get(client, f"/v1/apps/{app_id}/events/stream?token={token}")
    assert (status, body["app_id"]) == (200, app_id)


async def test_a_stream_token_opens_no_other_route(rig: Rig, client: Client) -> None:
    app_id, _ = app_with_key(rig)
    token, _ = rig.auth.issue_stream_token(app_id, {}, ADMIN)
    status, body = await get(client, f"/v1/apps/{app_id}/things?token={token}")
    assert (status, body["error"]["message"]) == (
        401,
        "a stream token opens only GET .../events/stream",
    )


async def test_a_stream_token_opens_no_other_apps_stream(rig: Rig, client: Client) -> None:
    app_id, _ = app_with_key(rig, "mine")
    theirs, _ = app_with_key(rig, "theirs")
    token, _ = rig.auth.issue_stream_token(app_id, {}, ADMIN)
    status, _ = await get(client, f"/v1/apps/{theirs}/events/stream?token={token}")
    assert status == 404


async def test_a_stream_token_of_a_deleted_app_is_404(rig: Rig, client: Client) -> None:
    app_id, _ = app_with_key(rig)
    token, _ = rig.auth.issue_stream_token(app_id, {}, ADMIN)
    await rig.store.as_apps.delete(app_id)
    status, _ = await get(client, f"/v1/apps/{app_id}/events/stream?token={token}")
    assert status == 404


async def test_a_forged_stream_token_is_401(rig: Rig, client: Client) -> None:
    app_id, _ = app_with_key(rig)
    status, body = await get(client, f"/v1/apps/{app_id}/events/stream?token=hrst_e30.AAAA")
    assert (status, body["error"]["message"]) == (
        401,
        "the stream token is not valid or has expired",
    )


# Grants


async def test_a_key_without_what_the_route_needs_is_403_and_says_what_it_lacks(
    rig: Rig, client: Client
) -> None:
    app_id, key = app_with_key(rig, scopes=["publish"])
    status, body = await get(client, f"/v1/apps/{app_id}/things", key)
    assert status == 403
    assert body["error"]["code"] == "forbidden"
    assert body["error"]["details"] == {"missing": ["read"]}
    # Reading events is a publish key's: the stream's route needs only that.
    status, _ = await get(client, f"/v1/apps/{app_id}/events/stream", key)
    assert status == 200


async def test_another_apps_resources_are_404_before_any_grant_is_asked(
    rig: Rig, client: Client
) -> None:
    _, key = app_with_key(rig, "mine", scopes=["publish"])
    theirs, _ = app_with_key(rig, "theirs")
    status, _ = await get(client, f"/v1/apps/{theirs}/things", key)
    assert status == 404
