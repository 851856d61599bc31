"""Scoped app keys and portal sessions against every route of the table: each credential is
refused with 403 exactly where this file's table (written by hand, not derived from the route
table) says it may not go, and served everywhere else; portal sessions expire and end."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from hookrelay.api.contract import Auth, Route
from hookrelay.api.routes import ROUTES
from hookrelay.api.state import STORAGE
from hookrelay.settings import Settings
from tests.integration.api_calls import ADMIN, bearer, create_app_with_key, open_session
from tests.integration.test_route_table import PLACEHOLDERS

Client = TestClient  # type: ignore[type-arg]

PUBLISH, MANAGE, READ = "publish", "manage", "read"
VIEW, ENDPOINTS, SECRETS, REPLAY, TEST = (
    "view",
    "manage_endpoints",
    "view_secrets",
    "replay",
    "send_test",
)

# Who may call each route: the key scopes and the session capabilities (beside view, which every
# session has) that open it. A route no scope opens is the admin's alone.
ALLOWED: dict[str, set[str]] = {
    "get_v1_me": {PUBLISH, MANAGE, READ, VIEW},
    "post_v1_apps": set(),
    "get_v1_apps": {MANAGE, READ, VIEW},
    "get_v1_apps_app_id": {MANAGE, READ, VIEW},
    "get_v1_apps_app_id_summary": {MANAGE, READ, VIEW},
    # The app itself: only a key of every scope (as the app's first key is).
    "patch_v1_apps_app_id": set(),
    "delete_v1_apps_app_id": set(),
    "post_v1_apps_app_id_keys": {MANAGE},
    "get_v1_apps_app_id_keys": {MANAGE, READ},
    "delete_v1_apps_app_id_keys_key_id": {MANAGE},
    "post_v1_apps_app_id_portal-sessions": {MANAGE},
    "delete_v1_apps_app_id_portal-sessions": {MANAGE},
    "post_v1_apps_app_id_endpoints": {MANAGE, ENDPOINTS},
    "get_v1_apps_app_id_endpoints": {MANAGE, READ, VIEW},
    "get_v1_apps_app_id_endpoints_endpoint_id": {MANAGE, READ, VIEW},
    "patch_v1_apps_app_id_endpoints_endpoint_id": {MANAGE, ENDPOINTS},
    "delete_v1_apps_app_id_endpoints_endpoint_id": {MANAGE, ENDPOINTS},
    "get_v1_apps_app_id_endpoints_endpoint_id_stats": {MANAGE, READ, VIEW},
    "get_v1_apps_app_id_endpoints_endpoint_id_secret": {MANAGE, SECRETS},
    # Rotating shows the new secret: it needs both.
    "post_v1_apps_app_id_endpoints_endpoint_id_rotate-secret": {MANAGE, f"{ENDPOINTS}+{SECRETS}"},
    "post_v1_apps_app_id_endpoints_endpoint_id_recover": {MANAGE, REPLAY},
    "post_v1_apps_app_id_endpoints_endpoint_id_send-example": {MANAGE, TEST},
    "post_v1_apps_app_id_events": {PUBLISH},
    "post_v1_apps_app_id_events_batch": {PUBLISH},
    "get_v1_apps_app_id_events": {PUBLISH, MANAGE, READ, VIEW},
    "get_v1_apps_app_id_events_stream": {PUBLISH, MANAGE, READ, VIEW},
    "post_v1_apps_app_id_stream-tokens": {PUBLISH, MANAGE, READ, VIEW},
    "get_v1_apps_app_id_jobs_job_id": {PUBLISH, MANAGE, READ, VIEW},
    "get_v1_apps_app_id_events_event_id": {PUBLISH, MANAGE, READ, VIEW},
    "get_v1_apps_app_id_deliveries": {MANAGE, READ, VIEW},
    "post_v1_apps_app_id_deliveries_replay": {MANAGE, REPLAY},
    "get_v1_apps_app_id_deliveries_delivery_id": {MANAGE, READ, VIEW},
    "post_v1_apps_app_id_deliveries_delivery_id_replay": {MANAGE, REPLAY},
    "get_v1_apps_app_id_attempts": {MANAGE, READ, VIEW},
}

TOKEN_ROUTES = [r for r in ROUTES if r.auth in (Auth.BEARER, Auth.BEARER_OR_STREAM_TOKEN)]
# The credentials tried: a key of each scope, and sessions of view alone and of view with each
# other capability (and the two that rotating needs).
KEY_SCOPES = (PUBLISH, MANAGE, READ)
SESSION_CAPABILITIES = ((), (ENDPOINTS,), (SECRETS,), (REPLAY,), (TEST,), (ENDPOINTS, SECRETS))


def opens(route: Route, credential: str) -> bool:
    """Whether this file's table lets `credential` (a scope, or a session's capabilities
    joined by +) call `route`."""
    allowed = ALLOWED[route.operation_id()]
    if credential in KEY_SCOPES:
        return credential in allowed
    held = {VIEW, *filter(None, credential.split("+"))}
    return any(entry not in KEY_SCOPES and set(entry.split("+")) <= held for entry in allowed)


def test_the_table_names_every_route_that_needs_a_token() -> None:
    assert {route.operation_id() for route in TOKEN_ROUTES} == set(ALLOWED)


async def credentials(api: Client) -> list[tuple[str, str, str]]:
    """(what it is, its token, its app): each credential on an app of its own."""
    made = []
    for scope in KEY_SCOPES:
        app = await create_app_with_key(api, f"scoped {scope}")
        answer = await api.post(
            f"/v1/apps/{app['id']}/keys", json={"scopes": [scope]}, headers=ADMIN
        )
        made.append((scope, (await answer.json())["key"], app["id"]))
    for capabilities in SESSION_CAPABILITIES:
        app = await create_app_with_key(api, "portal " + "+".join(capabilities))
        answer = await api.post(
            f"/v1/apps/{app['id']}/portal-sessions",
            json={"capabilities": list(capabilities)},
            headers=ADMIN,
        )
        assert answer.status == 201
        made.append(("+".join(capabilities), (await answer.json())["token"], app["id"]))
    return made


# Bodies a credential allowed on the route may send: a key or session made by a scoped key
# holds no more than it (a body asking for more is refused too, as the service's tests show).
BODIES: dict[str, dict[str, Any]] = {
    "post_v1_apps_app_id_keys": {"scopes": ["read"]},
    "post_v1_apps_app_id_portal-sessions": {"capabilities": []},
}


async def call(api: Client, route: Route, token: str, app_id: str) -> Any:
    body: dict[str, Any] | None = None
    if route.method in ("POST", "PATCH"):
        body = BODIES.get(route.operation_id(), {})
    path = route.path.format(**{**PLACEHOLDERS, "app_id": app_id})
    return await api.request(route.method, path, json=body, headers=bearer(token))


async def test_every_scope_and_capability_is_refused_where_it_may_not_go_and_only_there(
    api: Client,
) -> None:
    # The app's delete last: after it, nothing of the app is left to call.
    routes = sorted(TOKEN_ROUTES, key=lambda r: r.operation_id() == "delete_v1_apps_app_id")
    wrong = []
    for credential, token, app_id in await credentials(api):
        for route in routes:
            response = await call(api, route, token, app_id)
            refused = response.status == 403
            if refused:  # the JSON error shape
                assert (await response.json())["error"]["code"] == "forbidden"
            if response.status in (401, 500) or refused == opens(route, credential):
                wrong.append((credential or VIEW, route.method, route.path, response.status))
            response.close()
    assert wrong == []


async def test_a_refusal_names_what_the_credential_lacks(api: Client) -> None:
    app = await create_app_with_key(api)
    answer = await api.post(f"/v1/apps/{app['id']}/keys", json={"scopes": ["read"]}, headers=ADMIN)
    reader = (await answer.json())["key"]
    refused = await api.post(
        f"/v1/apps/{app['id']}/events",
        json={"type": "job.completed", "data": {"job_id": "j"}},
        headers=bearer(reader),
    )
    assert refused.status == 403
    assert (await refused.json())["error"] == {
        "code": "forbidden",
        "message": "this credential may not do this: it lacks send_events"
        " (given by the scope publish)",
        "details": {"missing": ["send_events"]},
    }


async def test_keys_are_listed_with_their_scopes(api: Client) -> None:
    app = await create_app_with_key(api)
    await api.post(
        f"/v1/apps/{app['id']}/keys", json={"name": "ci", "scopes": ["read"]}, headers=ADMIN
    )
    listed = await (await api.get(f"/v1/apps/{app['id']}/keys", headers=ADMIN)).json()
    assert [k["scopes"] for k in listed["data"]] == [["publish", "manage", "read"], ["read"]]


async def test_a_manage_key_cannot_make_itself_a_key_that_sends(api: Client) -> None:
    app = await create_app_with_key(api)
    made = await api.post(f"/v1/apps/{app['id']}/keys", json={"scopes": ["manage"]}, headers=ADMIN)
    manager = (await made.json())["key"]
    escalated = await api.post(f"/v1/apps/{app['id']}/keys", json={}, headers=bearer(manager))
    assert escalated.status == 403
    listed = await (await api.get(f"/v1/apps/{app['id']}/keys", headers=ADMIN)).json()
    assert len(listed["data"]) == 2  # nothing was made


# Portal sessions


async def test_a_sessions_link_carries_its_token_in_the_fragment_only(api: Client) -> None:
    app = await create_app_with_key(api)
    session = await open_session(api, app["id"], capabilities=["replay"])
    base, fragment = session["url"].split("#", 1)
    assert base == f"http://{api.host}:{api.port}/console"
    assert fragment == f"token={session['token']}"
    assert session["capabilities"] == ["view", "replay"]
    assert session["app_id"] == app["id"]


@pytest.mark.settings(public_url="https://hooks.example.com")
async def test_a_sessions_link_uses_the_public_url_when_set(api: Client) -> None:
    app = await create_app_with_key(api)
    session = await open_session(api, app["id"])
    assert session["url"].startswith("https://hooks.example.com/console#token=hrps_")


async def test_a_session_sees_nothing_of_another_app(api: Client) -> None:
    mine, theirs = await create_app_with_key(api, "mine"), await create_app_with_key(api, "theirs")
    token = (await open_session(api, mine["id"]))["token"]
    for path in ("", "/endpoints", "/deliveries", "/events"):
        answer = await api.get(f"/v1/apps/{theirs['id']}{path}", headers=bearer(token))
        assert answer.status == 404, path
    listed = await (await api.get("/v1/apps", headers=bearer(token))).json()
    assert [a["id"] for a in listed["data"]] == [mine["id"]]


async def test_an_expired_session_is_401_and_the_workers_delete_it(
    api: Client, settings: Settings
) -> None:
    app = await create_app_with_key(api)
    session = await open_session(api, app["id"], expires_in=60)
    connection = await asyncpg.connect(settings.database_url)
    try:
        await connection.execute(
            "UPDATE portal_sessions SET expires_at = now() - interval '1 second' WHERE id = $1",
            session["id"],
        )
    finally:
        await connection.close()
    answer = await api.get(f"/v1/apps/{app['id']}", headers=bearer(session["token"]))
    assert answer.status == 401
    assert await api.server.app[STORAGE].maintenance.prune_portal_sessions() == 1


async def test_ending_the_sessions_refuses_them_and_leaves_the_keys(api: Client) -> None:
    app = await create_app_with_key(api)
    tokens = [(await open_session(api, app["id"]))["token"] for _ in range(2)]
    for token in tokens:
        assert (await api.get(f"/v1/apps/{app['id']}", headers=bearer(token))).status == 200
    ended = await api.delete(f"/v1/apps/{app['id']}/portal-sessions", headers=ADMIN)
    assert (ended.status, await ended.json()) == (200, {"ended": 2})
    for token in tokens:
        assert (await api.get(f"/v1/apps/{app['id']}", headers=bearer(token))).status == 401
    assert (await api.get(f"/v1/apps/{app['id']}", headers=bearer(app["api_key"]))).status == 200


async def test_me_says_what_the_credential_is_and_may_do(api: Client) -> None:
    app = await create_app_with_key(api)
    session = await open_session(api, app["id"], capabilities=["replay"])
    me = await (await api.get("/v1/me", headers=bearer(session["token"]))).json()
    assert me == {
        "kind": "portal_session",
        "app_id": app["id"],
        "grants": ["read", "read_events", "replay"],
        "expires_at": me["expires_at"],
    }
    assert me["expires_at"].startswith(session["expires_at"][:19])
    admin = await (await api.get("/v1/me", headers=ADMIN)).json()
    assert (admin["kind"], admin["app_id"], len(admin["grants"])) == ("admin", None, 9)


async def test_only_a_key_of_every_scope_renames_or_deletes_its_app(api: Client) -> None:
    app = await create_app_with_key(api)
    made = await api.post(
        f"/v1/apps/{app['id']}/keys", json={"scopes": ["manage", "read"]}, headers=ADMIN
    )
    manager = bearer((await made.json())["key"])
    assert (await api.delete(f"/v1/apps/{app['id']}", headers=manager)).status == 403
    renamed = {"name": "renamed"}
    assert (await api.patch(f"/v1/apps/{app['id']}", json=renamed, headers=manager)).status == 403
    owner = bearer(app["api_key"])
    assert (await api.patch(f"/v1/apps/{app['id']}", json=renamed, headers=owner)).status == 200
    assert (await api.delete(f"/v1/apps/{app['id']}", headers=owner)).status == 204


async def test_a_sessions_stream_token_opens_nothing_once_the_sessions_end(api: Client) -> None:
    app = await create_app_with_key(api)
    session = await open_session(api, app["id"])
    issued = await api.post(
        f"/v1/apps/{app['id']}/stream-tokens", json={}, headers=bearer(session["token"])
    )
    stream_token = (await issued.json())["token"]
    stream = f"/v1/apps/{app['id']}/events/stream?token={stream_token}"
    opened = await api.get(stream)
    assert opened.status == 200
    opened.close()
    await api.delete(f"/v1/apps/{app['id']}/portal-sessions", headers=ADMIN)
    refused = await api.get(stream)
    assert refused.status == 401
