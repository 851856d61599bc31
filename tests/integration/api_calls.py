"""Calls to the API that many integration tests make."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp.test_utils import TestClient
from standardwebhooks.webhooks import Webhook

from hookrelay.models import Endpoint
from hookrelay.settings import Settings
from hookrelay.storage import Storage
from tests.conftest import ADMIN_TOKEN
from tests.receiver import Received

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def create_app_with_key(api: TestClient, name: str = "acme") -> dict[str, Any]:  # type: ignore[type-arg]
    response = await api.post("/v1/apps", json={"name": name}, headers=ADMIN)
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def wait_until(
    check: Callable[[], Awaitable[bool]], what: str = "the condition", timeout_s: float = 10.0
) -> float:
    """Seconds until `check` held; fails the test after `timeout_s`."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not await check():
        assert loop.time() - started < timeout_s, f"not {what} after {timeout_s} s"
        await asyncio.sleep(0.02)
    return loop.time() - started


async def get_json(api: TestClient, app: dict[str, Any], path: str) -> Any:  # type: ignore[type-arg]
    """GET a path of `app` with its key: the answer, which must be a 200."""
    response = await api.get(f"/v1/apps/{app['id']}{path}", headers=bearer(app["api_key"]))
    assert response.status == 200, await response.text()
    return orjson.loads(await response.read())


async def post_json(
    api: TestClient,  # type: ignore[type-arg]
    app: dict[str, Any],
    path: str,
    body: Any,
) -> tuple[int, Any]:
    """POST `body` to a path of `app` with its key: the status and the answer."""
    response = await api.post(
        f"/v1/apps/{app['id']}{path}", json=body, headers=bearer(app["api_key"])
    )
    return response.status, orjson.loads(await response.read())


async def add_endpoint(
    api: TestClient,
    app: dict[str, Any],
    url: str,
    **fields: Any,  # type: ignore[type-arg]
) -> dict[str, Any]:
    response = await api.post(
        f"/v1/apps/{app['id']}/endpoints",
        json={"url": url, **fields},
        headers=bearer(app["api_key"]),
    )
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def save_endpoint_as_before(
    settings: Settings,
    app: dict[str, Any],
    endpoint_id: str,
    change: Callable[[Endpoint], Endpoint],
) -> None:
    """Change an endpoint's row past the API's checks, as a row saved before a rule existed."""
    storage = await Storage.open(settings.require_database_url())
    try:
        await storage.endpoints.update(app["id"], endpoint_id, change)
    finally:
        await storage.close()


async def send_event(
    api: TestClient,
    app: dict[str, Any],
    event_type: str,
    data: dict[str, Any],  # type: ignore[type-arg]
) -> dict[str, Any]:
    response = await api.post(
        f"/v1/apps/{app['id']}/events",
        json={"type": event_type, "data": data},
        headers=bearer(app["api_key"]),
    )
    assert response.status == 202, await response.text()
    body: dict[str, Any] = await response.json()
    return body


def verify(secret: str, received: Received) -> dict[str, Any]:
    payload: dict[str, Any] = Webhook(secret).verify(received.body, received.headers)
    return payload


async def wait_for_delivery_status(
    api: TestClient,
    app: dict[str, Any],
    event_id: str,
    status: str,
    timeout_s: float = 10.0,
    endpoint_id: str | None = None,
) -> dict[str, Any]:
    """Wait until every delivery of the event (to `endpoint_id`, if given) has `status`."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        response = await api.get(
            f"/v1/apps/{app['id']}/events/{event_id}", headers=bearer(app["api_key"])
        )
        body: dict[str, Any] = orjson.loads(await response.read())
        deliveries = [
            d for d in body["deliveries"] if endpoint_id is None or d["endpoint_id"] == endpoint_id
        ]
        if deliveries and all(d["status"] == status for d in deliveries):
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"deliveries did not become {status}: {body['deliveries']}")
        await asyncio.sleep(0.02)


async def open_session(
    api: TestClient,  # type: ignore[type-arg]
    app_id: str,
    **body: Any,
) -> dict[str, Any]:
    """A portal session on the app, opened by the admin (its answer: url, token, ...)."""
    answer = await api.post(f"/v1/apps/{app_id}/portal-sessions", json=body, headers=ADMIN)
    assert answer.status == 201, await answer.text()
    assert answer.headers["Cache-Control"] == "no-store"
    made: dict[str, Any] = await answer.json()
    return made
