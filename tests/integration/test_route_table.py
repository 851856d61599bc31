"""Every route of the table is served as the table declares it: who may call it, and what it
answers (the client of these tests holds each answer to the route's schemas)."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from hookrelay.api.contract import Auth, Route
from hookrelay.api.routes import ROUTES
from tests.integration.api_calls import ADMIN

Client = TestClient  # type: ignore[type-arg]

# Ids of nothing, each well formed, so that a request gets past the path's checks.
PLACEHOLDERS = {
    "app_id": "app_" + "0" * 32,
    "endpoint_id": "ep_" + "0" * 32,
    "key_id": "key_" + "0" * 32,
    "event_id": "evt_" + "0" * 32,
    "delivery_id": "dlv_" + "0" * 32,
    "job_id": "job-1",
}
TOKEN_ROUTES = [r for r in ROUTES if r.auth in (Auth.BEARER, Auth.BEARER_OR_STREAM_TOKEN)]
OPEN_ROUTES = [r for r in ROUTES if r not in TOKEN_ROUTES]


async def call(api: Client, route: Route, headers: dict[str, str]) -> Any:
    body: dict[str, Any] | None = {} if route.method in ("POST", "PATCH") else None
    return await api.request(
        route.method, route.path.format(**PLACEHOLDERS), json=body, headers=headers
    )


async def test_every_route_that_needs_a_token_refuses_a_request_without_one(api: Client) -> None:
    for route in TOKEN_ROUTES:
        response = await call(api, route, {})
        assert response.status == 401, (route.method, route.path)
        assert (await response.json())["error"]["code"] == "unauthorized"


async def test_every_open_route_answers_without_a_token(api: Client) -> None:
    assert {route.path for route in OPEN_ROUTES} == {
        "/",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    }
    for route in OPEN_ROUTES:  # no HOOKRELAY_METRICS_TOKEN here: /metrics is open
        response = await call(api, route, {})
        assert response.status == 200, route.path


async def test_every_route_answers_the_admin_with_a_status_it_declares(api: Client) -> None:
    for route in ROUTES:
        response = await call(api, route, ADMIN)
        assert response.status in route.responses(), (route.method, route.path, response.status)
