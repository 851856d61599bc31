"""Integration fixtures: the real API app, a real in-process worker, a real receiver.

Every client these tests make holds each answer it receives to the route table (see
tests/answers.py): a status the route does not declare, or a body its schema refuses, fails the
test that received it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import ClientHandlerType, ClientRequest, ClientResponse
from aiohttp.abc import AbstractResolver
from aiohttp.test_utils import BaseTestServer, TestClient, TestServer, make_mocked_request
from redis.asyncio import Redis
from selenium import webdriver

from hookrelay.api.app import create_app
from hookrelay.broker import Broker
from hookrelay.settings import Settings
from hookrelay.worker.process import WorkerProcess
from hookrelay.worker.resources import WorkerResources
from tests.answers import EVENT_STREAM, answer_problems, route_of
from tests.integration.browser import chromium
from tests.integration.served import ServedAsInProduction


class CheckedClient(TestClient):  # type: ignore[type-arg]
    """A test client that checks every answer against the route table and its schemas."""

    def __init__(self, server: BaseTestServer, **kwargs: Any) -> None:
        assert isinstance(server, TestServer), "only an application's answers can be checked"
        self._router = server.app.router
        super().__init__(server, middlewares=(self._check_answer,), **kwargs)

    async def _check_answer(
        self, request: ClientRequest, handler: ClientHandlerType
    ) -> ClientResponse:
        response = await handler(request)
        if request.method == "HEAD":
            return response
        match = await self._router.resolve(
            make_mocked_request(request.method, request.url.raw_path)
        )
        route = None
        if match.http_exception is None:
            resource = match.route.resource
            route = None if resource is None else route_of(request.method, resource.canonical)
            if route is None:  # a page, not the API (/demo)
                return response
        # Every body but a stream's, which would never end.
        body = None if response.content_type == EVENT_STREAM else await response.read()
        problems = answer_problems(route, response.status, response.content_type, body)
        where = f"{request.method} {request.url.path} answered {response.status}"
        assert not problems, f"{where}, not as the route table says: {problems}"
        return response


@pytest.fixture
def aiohttp_client_cls() -> type[TestClient]:  # type: ignore[type-arg]
    """pytest-aiohttp's aiohttp_client makes CheckedClients."""
    return CheckedClient


@pytest.fixture
def resolver() -> AbstractResolver | None:
    """The resolver for callback hosts: the system's, unless a test module gives its own."""
    return None


@pytest.fixture
async def api(
    aiohttp_client: Any, settings: Settings, resolver: AbstractResolver | None
) -> TestClient:  # type: ignore[type-arg]
    server = ServedAsInProduction(create_app(settings, resolver), settings)
    client: TestClient = await aiohttp_client(server)  # type: ignore[type-arg]
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


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    """Headless Chromium, quit after the test."""
    yield from chromium()
