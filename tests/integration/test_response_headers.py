"""Headers every answer carries (nosniff, a Server without versions), answers holding a secret
that no cache may keep, and the token that guards /metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from hookrelay.settings import Settings
from tests.integration.api_calls import ADMIN, add_endpoint, bearer, create_app_with_key
from tests.receiver import Receiver

Client = TestClient  # type: ignore[type-arg]
METRICS_TOKEN = "hrm_scraper-token-for-tests"


def assert_safe_headers(response: ClientResponse) -> None:
    assert response.headers.get("X-Content-Type-Options") == "nosniff", response.url
    assert response.headers.get("Server") == "hookrelay", response.url


async def test_every_kind_of_answer_says_nosniff_and_names_no_versions(api: Client) -> None:
    app = await create_app_with_key(api)
    answers = [
        await api.get("/healthz"),
        await api.get("/openapi.json"),
        await api.get("/metrics"),
        await api.get("/v1/apps", headers=ADMIN),
        await api.get("/v1/apps"),  # 401
        await api.get("/nowhere"),  # 404 of an unknown route
        await api.put("/v1/apps", headers=ADMIN),  # 405
        await api.post("/v1/apps", data=b"{", headers={**ADMIN, "Content-Type": "text/plain"}),
        await api.get(f"/v1/apps/{app['id']}/events?wait=0", headers=bearer(app["api_key"])),
    ]
    for response in answers:
        assert_safe_headers(response)
        assert "aiohttp" not in response.headers.get("Server", "").lower()


async def test_an_event_stream_says_nosniff_and_names_no_versions(api: Client) -> None:
    app = await create_app_with_key(api)
    response = await api.get(f"/v1/apps/{app['id']}/events/stream", headers=bearer(app["api_key"]))
    try:
        assert response.status == 200
        assert_safe_headers(response)
        assert await response.content.readline() == b"retry: 2000\n"
    finally:
        response.close()


@pytest.mark.settings(demo_page=True)
async def test_the_demo_page_says_nosniff_and_names_no_versions(api: Client) -> None:
    for path in ("/demo", "/demo/demo.js", "/demo/missing.js"):
        assert_safe_headers(await api.get(path))


Call = Callable[[Client, dict[str, Any], str], Awaitable[ClientResponse]]


async def _create_app(api: Client, app: dict[str, Any], endpoint_id: str) -> ClientResponse:
    return await api.post("/v1/apps", json={"name": "other"}, headers=ADMIN)


async def _create_key(api: Client, app: dict[str, Any], endpoint_id: str) -> ClientResponse:
    return await api.post(f"/v1/apps/{app['id']}/keys", json={}, headers=ADMIN)


async def _create_endpoint(api: Client, app: dict[str, Any], endpoint_id: str) -> ClientResponse:
    return await api.post(
        f"/v1/apps/{app['id']}/endpoints",
        json={"url": "http://127.0.0.1:9/hook"},
        headers=bearer(app["api_key"]),
    )


async def _read_secret(api: Client, app: dict[str, Any], endpoint_id: str) -> ClientResponse:
    return await api.get(
        f"/v1/apps/{app['id']}/endpoints/{endpoint_id}/secret", headers=bearer(app["api_key"])
    )


async def _rotate_secret(api: Client, app: dict[str, Any], endpoint_id: str) -> ClientResponse:
    return await api.post(
        f"/v1/apps/{app['id']}/endpoints/{endpoint_id}/rotate-secret",
        headers=bearer(app["api_key"]),
    )


async def _stream_token(api: Client, app: dict[str, Any], endpoint_id: str) -> ClientResponse:
    return await api.post(
        f"/v1/apps/{app['id']}/stream-tokens", json={}, headers=bearer(app["api_key"])
    )


@pytest.mark.parametrize(
    ("call", "status", "field"),
    [
        (_create_app, 201, "api_key"),
        (_create_key, 201, "key"),
        (_create_endpoint, 201, "secret"),
        (_read_secret, 200, "secret"),
        (_rotate_secret, 200, "secret"),
        (_stream_token, 201, "token"),
    ],
)
async def test_an_answer_holding_a_secret_may_not_be_stored_by_any_cache(
    api: Client, receiver: Receiver, call: Call, status: int, field: str
) -> None:
    app = await create_app_with_key(api)
    endpoint = await add_endpoint(api, app, f"{receiver.url}/hook")
    response = await call(api, app, endpoint["id"])
    assert response.status == status, await response.text()
    assert (await response.json())[field]
    assert response.headers.get("Cache-Control") == "no-store"


async def test_answers_without_a_secret_may_be_cached_as_before(api: Client) -> None:
    app = await create_app_with_key(api)
    response = await api.get(f"/v1/apps/{app['id']}", headers=bearer(app["api_key"]))
    assert response.status == 200
    assert "Cache-Control" not in response.headers


async def test_metrics_are_open_without_a_metrics_token(api: Client, settings: Settings) -> None:
    assert settings.metrics_token is None
    response = await api.get("/metrics")
    assert response.status == 200
    assert "hookrelay_deliveries_total" in await response.text()


@pytest.mark.settings(metrics_token=METRICS_TOKEN)
async def test_metrics_need_the_metrics_token_when_one_is_set(api: Client) -> None:
    for headers in (
        {},
        {"Authorization": f"Bearer {METRICS_TOKEN}x"},
        {"Authorization": f"Bearer {METRICS_TOKEN[:-1]}"},
        {"Authorization": f"Basic {METRICS_TOKEN}"},
        ADMIN,  # the admin token is not a scraper's token
    ):
        refused = await api.get("/metrics", headers=headers)
        assert refused.status == 401, headers
        body = await refused.json()
        assert body["error"]["code"] == "unauthorized"
        assert "hookrelay_" not in await refused.text()
    allowed = await api.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert allowed.status == 200
    assert "hookrelay_deliveries_total" in await allowed.text()
