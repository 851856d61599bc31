"""Revocations reach every API process within a second: two API apps share one Postgres and
one Redis, as two replicas behind a load balancer do."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from hookrelay.api.app import create_app
from hookrelay.api.state import AUTH
from hookrelay.broker.keys import Keys, listener_name
from hookrelay.settings import Settings
from tests.integration.api_calls import (
    ADMIN,
    bearer,
    create_app_with_key,
    open_session,
    wait_until,
)
from tests.integration.served import ServedAsInProduction

Client = TestClient  # type: ignore[type-arg]
REVOCATION_DEADLINE_S = 1.0


@pytest.fixture
async def two_apis(aiohttp_client: Any, settings: Settings) -> tuple[Client, Client]:
    """Two API processes' apps, each with its own key cache, both listening for revocations."""
    one: Client = await aiohttp_client(ServedAsInProduction(create_app(settings), settings))
    two: Client = await aiohttp_client(ServedAsInProduction(create_app(settings), settings))
    await wait_until(lambda: _listeners(settings, 2), "both processes subscribed")
    return one, two


async def _listeners(settings: Settings, count: int) -> bool:
    channel = Keys(settings.queue_name).revocation_channel
    redis = Redis.from_url(settings.require_redis_url())
    try:
        [(_, subscribed)] = await redis.pubsub_numsub(channel)
    finally:
        await redis.aclose()
    return int(subscribed) == count


async def status_with(api: Client, key: str, app_id: str) -> int:
    return (await api.get(f"/v1/apps/{app_id}", headers=bearer(key))).status


async def refused_within_a_second(api: Client, token: str, app_id: str) -> None:
    """Wait until `api` refuses `token` (401), at most REVOCATION_DEADLINE_S."""

    async def refused() -> bool:
        return await status_with(api, token, app_id) == 401

    took_s = await wait_until(refused, "refused by the other process", REVOCATION_DEADLINE_S)
    assert took_s < REVOCATION_DEADLINE_S


async def test_a_key_revoked_through_one_api_process_is_refused_by_the_other_within_a_second(
    two_apis: tuple[Client, Client],
) -> None:
    one, two = two_apis
    app = await create_app_with_key(one)
    spare = await one.post(f"/v1/apps/{app['id']}/keys", json={}, headers=ADMIN)
    spare_key = (await spare.json())["key"]
    assert await status_with(two, app["api_key"], app["id"]) == 200  # now in two's cache
    assert await status_with(two, spare_key, app["id"]) == 200
    listed = await one.get(f"/v1/apps/{app['id']}/keys", headers=ADMIN)
    first_key_id = min(k["id"] for k in (await listed.json())["data"])
    revoked = await one.delete(f"/v1/apps/{app['id']}/keys/{first_key_id}", headers=ADMIN)
    assert revoked.status == 200
    await refused_within_a_second(two, app["api_key"], app["id"])
    assert await status_with(two, spare_key, app["id"]) == 200  # the app's other key still works


async def test_the_key_of_an_app_deleted_through_one_api_process_is_refused_by_the_other(
    two_apis: tuple[Client, Client],
) -> None:
    one, two = two_apis
    app = await create_app_with_key(one)
    assert await status_with(two, app["api_key"], app["id"]) == 200
    assert (await one.delete(f"/v1/apps/{app['id']}", headers=ADMIN)).status == 204
    await refused_within_a_second(two, app["api_key"], app["id"])


async def test_the_key_cache_is_emptied_when_its_notices_resume_after_a_lost_connection(
    two_apis: tuple[Client, Client], settings: Settings
) -> None:
    one, two = two_apis
    app = await create_app_with_key(one)
    assert await status_with(two, app["api_key"], app["id"]) == 200
    cache = two.server.app[AUTH].keys
    assert len(cache) == 1
    redis = Redis.from_url(settings.require_redis_url())
    try:
        name = listener_name(Keys(settings.queue_name).revocation_channel)
        listeners = [c for c in await redis.client_list() if c["name"] == name]
        assert len(listeners) == 2
        for client in listeners:
            await redis.execute_command("CLIENT", "KILL", "ID", client["id"])
    finally:
        await redis.aclose()

    async def emptied() -> bool:
        return len(cache) == 0

    # A notice sent while the connection was down would have been lost: the cache is dropped.
    await wait_until(emptied, "emptied after resubscribing", 5.0)
    await wait_until(lambda: _listeners(settings, 2), "both processes subscribed again")


async def test_portal_sessions_ended_through_one_api_process_are_refused_by_the_other(
    two_apis: tuple[Client, Client],
) -> None:
    one, two = two_apis
    app = await create_app_with_key(one)
    token = (await open_session(one, app["id"]))["token"]
    assert await status_with(two, token, app["id"]) == 200  # now in two's cache
    ended = await one.delete(f"/v1/apps/{app['id']}/portal-sessions", headers=ADMIN)
    assert ended.status == 200
    await refused_within_a_second(two, token, app["id"])
    assert await status_with(two, app["api_key"], app["id"]) == 200


async def test_the_portal_session_of_an_app_deleted_through_one_process_is_refused_by_the_other(
    two_apis: tuple[Client, Client],
) -> None:
    one, two = two_apis
    app = await create_app_with_key(one)
    token = (await open_session(one, app["id"]))["token"]
    assert await status_with(two, token, app["id"]) == 200
    assert (await one.delete(f"/v1/apps/{app['id']}", headers=ADMIN)).status == 204
    await refused_within_a_second(two, token, app["id"])
