"""Integration fixtures: the real API app, a real in-process worker, a real receiver."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from hookrelay.api.app import create_app
from hookrelay.broker import Broker
from hookrelay.settings import Settings
from hookrelay.worker.main import WorkerProcess, WorkerResources


@pytest.fixture
def resolver() -> AbstractResolver | None:
    """The resolver for callback hosts: the system's, unless a test module gives its own."""
    return None


@pytest.fixture
async def api(
    aiohttp_client: Any, settings: Settings, resolver: AbstractResolver | None
) -> TestClient:  # type: ignore[type-arg]
    client: TestClient = await aiohttp_client(create_app(settings, resolver))  # type: ignore[type-arg]
    return client


@pytest.fixture
async def worker(settings: Settings, resolver: AbstractResolver | None) -> AsyncIterator[None]:
    """An arq worker running in this test's event loop."""
    process = WorkerProcess(await WorkerResources.open(settings, resolver))
    process.start()
    yield
    await process.stop(grace_s=5.0)


@pytest.fixture
async def broker(redis_url: str) -> AsyncIterator[Broker]:
    """A broker of its own namespace, for tests of Redis alone (no database)."""
    broker = Broker(redis_url, f"hookrelay:test:{uuid.uuid4().hex[:12]}")
    yield broker
    await broker.close()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    """A plain Redis client, to look at what the broker wrote."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()
