"""Faults that must lose nothing: a killed worker, a flushed and restarted Redis, a stopped
Postgres, and a receiver that fails, hangs and resets. Real processes, their own servers."""

from __future__ import annotations

import asyncio
import random
import shutil
import signal
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from tests.acceptance.harness import AcceptanceCluster, Client
from tests.conftest import server_tempdir
from tests.receiver import Received, Receiver

pytestmark = pytest.mark.acceptance

ClusterFactory = Callable[..., Awaitable[AcceptanceCluster]]


@pytest.fixture
async def make_cluster() -> AsyncIterator[ClusterFactory]:
    made: list[tuple[AcceptanceCluster, Any]] = []

    async def make(**settings: str) -> AcceptanceCluster:
        root = server_tempdir()
        cluster = AcceptanceCluster(root, **settings)
        made.append((cluster, root))
        await cluster.start()
        return cluster

    yield make
    for cluster, root in made:
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)


class Stream:
    """Sends events at a steady rate; remembers which were accepted and what was refused."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.accepted: set[str] = set()
        self.refused: list[tuple[int, Any]] = []

    async def run(self, rate: float, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n in range(int(rate * seconds)):
            try:
                status, body = await self.client.send(n)
            except aiohttp.ClientError as exc:
                self.refused.append((0, repr(exc)))
            else:
                if status == 202:
                    self.accepted.add(body["id"])
                else:
                    self.refused.append((status, body))
            await asyncio.sleep(max(0.0, start + (n + 1) / rate - loop.time()))


async def wait_until_all_received(
    receiver: Receiver, event_ids: set[str], cluster: AcceptanceCluster, timeout_s: float = 60.0
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        missing = event_ids - {r.headers["webhook-id"] for r in receiver.requests}
        if not missing:
            return
        if loop.time() > deadline:
            raise AssertionError(f"{len(missing)} accepted events never arrived\n{cluster.logs()}")
        await asyncio.sleep(0.1)


async def serve_one_endpoint(
    cluster: AcceptanceCluster, session: aiohttp.ClientSession, url: str
) -> tuple[Any, Any, Client]:
    """Start the API and a worker; make an app with one endpoint at `url`."""
    api = await cluster.start_api()
    worker = cluster.start_worker()
    client = Client(session, cluster.url)
    await client.create_app()
    await client.add_endpoint(url)
    return api, worker, client


def duplicates(receiver: Receiver) -> int:
    return len(receiver.requests) - len({r.headers["webhook-id"] for r in receiver.requests})


async def test_killing_a_worker_mid_stream_loses_no_event(
    make_cluster: ClusterFactory, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    cluster = await make_cluster(delivery_timeout="1s")
    await cluster.start_api()
    first = cluster.start_worker()
    client = Client(session, cluster.url)
    await client.create_app()
    await client.add_endpoint(f"{receiver.url}/hook")

    async def a_little_slow(_: Received) -> web.Response:
        await asyncio.sleep(0.02)  # so that some deliveries are in flight when the worker dies
        return web.Response(text="ok")

    receiver.respond = a_little_slow
    stream = Stream(client)
    sending = asyncio.create_task(stream.run(rate=100, seconds=10))
    await asyncio.sleep(3)
    first.kill()
    first.wait()
    cluster.start_worker()
    await sending

    assert stream.refused == []
    assert len(stream.accepted) == 1000
    await wait_until_all_received(receiver, stream.accepted, cluster)
    dup = duplicates(receiver)
    async with session.get(f"{cluster.url}/metrics") as response:
        redelivered = [
            line
            for line in (await response.text()).splitlines()
            if line.startswith("hookrelay_redeliveries_total")
        ]
    [[retried]] = await cluster.fetch("SELECT count(*) FROM deliveries WHERE attempt_count > 1")
    print(
        f"\nSIGKILL test: {len(stream.accepted)} events, {dup} duplicates, "
        f"{retried} deliveries attempted twice, {redelivered}"
    )
    assert dup < 0.01 * len(stream.accepted)


async def test_flushed_and_restarted_redis_loses_no_event(
    make_cluster: ClusterFactory, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    cluster = await make_cluster()
    api, worker, client = await serve_one_endpoint(cluster, session, f"{receiver.url}/hook")

    stream = Stream(client)
    sending = asyncio.create_task(stream.run(rate=40, seconds=5))
    await asyncio.sleep(1.5)
    redis = aioredis.from_url(cluster.redis_url)
    await redis.flushall()
    await redis.aclose()
    cluster.restart_redis_empty()
    await sending

    # Postgres was up throughout, so every event was accepted, Redis or not.
    assert stream.refused == []
    await wait_until_all_received(receiver, stream.accepted, cluster)
    assert api.poll() is None and worker.poll() is None


async def test_stopped_postgres_answers_503_and_loses_no_accepted_event(
    make_cluster: ClusterFactory, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    cluster = await make_cluster()
    api, worker, client = await serve_one_endpoint(cluster, session, f"{receiver.url}/hook")

    stream = Stream(client)
    sending = asyncio.create_task(stream.run(rate=30, seconds=8))
    await asyncio.sleep(1.5)
    await asyncio.to_thread(cluster.postgres.stop)
    await asyncio.sleep(3)
    await asyncio.to_thread(cluster.postgres.start)
    accepted_before_end = len(stream.accepted)
    await sending

    assert stream.refused, "ingest should have been refused while Postgres was down"
    for status, body in stream.refused:
        assert status == 503, (status, body, cluster.logs())
        assert body["error"]["code"] == "unavailable"
    assert len(stream.accepted) > accepted_before_end, "ingest did not recover by itself"
    await wait_until_all_received(receiver, stream.accepted, cluster)
    assert api.poll() is None and worker.poll() is None


async def test_a_hostile_receiver_ends_each_delivery_exactly_as_the_schedule_says(
    make_cluster: ClusterFactory, session: aiohttp.ClientSession
) -> None:
    cluster = await make_cluster(delivery_timeout="500ms", retry_schedule="100ms,200ms,300ms")
    await cluster.start_api()
    cluster.start_worker()
    rng = random.Random(7)

    async def hostile(request: web.Request) -> web.StreamResponse:
        roll = rng.random()
        if roll < 0.2:
            return web.Response(status=500)
        if roll < 0.3:
            await asyncio.sleep(2)  # past the 500 ms timeout
            return web.Response(text="late")
        if roll < 0.4:
            transport = request.transport
            assert transport is not None
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.close()  # RST instead of an answer
            await asyncio.sleep(1)
            return web.Response()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hostile)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        client = Client(session, cluster.url)
        await client.create_app()
        await client.add_endpoint(f"http://127.0.0.1:{port}/hook")
        for n in range(100):
            status, _ = await client.send(n)
            assert status == 202

        deliveries = await _wait_until_finished(cluster, 100)
    finally:
        await runner.cleanup()

    attempts = await cluster.fetch(
        "SELECT delivery_id, attempt_number, status_code, error_kind FROM attempts"
        " ORDER BY delivery_id, attempt_number"
    )
    by_delivery: dict[str, list[Any]] = {}
    for attempt in attempts:
        by_delivery.setdefault(attempt["delivery_id"], []).append(attempt)
    kinds = set()
    for delivery in deliveries:
        made = by_delivery[delivery["id"]]
        assert [a["attempt_number"] for a in made] == list(range(1, delivery["attempt_count"] + 1))
        failures, last = made[:-1], made[-1]
        assert all(a["error_kind"] is not None for a in failures)
        kinds |= {a["error_kind"] for a in made}
        if delivery["status"] == "succeeded":
            assert last["status_code"] == 200 and last["error_kind"] is None
        else:
            assert delivery["status"] == "dead"
            assert delivery["attempt_count"] == 4  # the first attempt and three retries
            assert last["error_kind"] is not None
    assert {"http_status", "timeout", "reset"} <= kinds, kinds


async def _wait_until_finished(
    cluster: AcceptanceCluster, count: int, timeout_s: float = 60.0
) -> list[Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        rows = await cluster.fetch("SELECT id, status, attempt_count FROM deliveries")
        if len(rows) == count and all(r["status"] in ("succeeded", "dead") for r in rows):
            return rows
        if loop.time() > deadline:
            states = sorted({r["status"] for r in rows})
            raise AssertionError(f"deliveries not finished: {states}\n{cluster.logs()}")
        await asyncio.sleep(0.2)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_sigterm_lets_an_in_flight_delivery_finish(
    make_cluster: ClusterFactory, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    cluster = await make_cluster(delivery_timeout="5s")
    await cluster.start_api()
    worker = cluster.start_worker()
    client = Client(session, cluster.url)
    await client.create_app()
    await client.add_endpoint(f"{receiver.url}/hook")

    async def slow(_: Received) -> web.Response:
        await asyncio.sleep(1.5)
        return web.Response(text="ok")

    receiver.respond = slow
    status, _ = await client.send(1)
    assert status == 202
    await receiver.wait_for(1)
    worker.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(worker.wait, 15) == 0
    [delivery] = await cluster.fetch("SELECT status, attempt_count FROM deliveries")
    assert (delivery["status"], delivery["attempt_count"]) == ("succeeded", 1)
