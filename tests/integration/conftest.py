"""Integration fixtures: the real API app, a real in-process worker, a real receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver
from aiohttp.test_utils import TestClient

from hookrelay.api.app import create_app
from hookrelay.settings import Settings
from hookrelay.worker.process import WorkerProcess
from hookrelay.worker.resources import WorkerResources


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
