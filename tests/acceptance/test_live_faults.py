"""Live streams under faults, with real processes: a client that reads nothing, a Redis that
restarts empty (notices lost), and an API that restarts under open streams."""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import time
from collections.abc import AsyncIterator

import aiohttp
import psutil
import pytest

from tests.acceptance.harness import AcceptanceCluster, Client
from tests.conftest import server_tempdir
from tests.sse import SseReader

pytestmark = pytest.mark.acceptance

MB = 1024 * 1024


@pytest.fixture
async def cluster(request: pytest.FixtureRequest) -> AsyncIterator[AcceptanceCluster]:
    root = server_tempdir()
    marker = request.node.get_closest_marker("cluster")
    made = AcceptanceCluster(root, **(marker.kwargs if marker else {}))
    try:
        await made.start()
        yield made
    finally:
        made.close()
        shutil.rmtree(root, ignore_errors=True)


async def open_stream(
    session: aiohttp.ClientSession,
    cluster: AcceptanceCluster,
    client: Client,
    last_event_id: str | None = None,
) -> SseReader:
    headers = {"Authorization": f"Bearer {client.key}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    response = await session.get(
        f"{cluster.url}/v1/apps/{client.app_id}/events/stream", headers=headers
    )
    assert response.status == 200
    reader = SseReader(response)
    assert (await reader.frame()).comments == ("connected",)
    return reader


def stalled_stream(cluster: AcceptanceCluster, client: Client) -> socket.socket:
    """A stream whose client never reads: its receive buffer is tiny, so the server's writes
    back up at once."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", cluster.api_port))
    sock.sendall(
        f"GET /v1/apps/{client.app_id}/events/stream HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {client.key}\r\n\r\n".encode()
    )
    return sock


async def send_large_events(client: Client, count: int, size: int) -> None:
    padding = "x" * size
    numbers = iter(range(count))

    async def sender() -> None:
        for n in numbers:
            status, _ = await client.call(
                "POST",
                f"/v1/apps/{client.app_id}/events",
                {"type": "image.ready", "data": {"n": n, "padding": padding}},
            )
            assert status == 202

    await asyncio.gather(*(sender() for _ in range(8)))


@pytest.mark.cluster(stream_send_timeout="2s")
async def test_a_client_that_reads_nothing_is_dropped_and_memory_stays_bounded(
    cluster: AcceptanceCluster,
) -> None:
    api = psutil.Process((await cluster.start_api()).pid)
    async with aiohttp.ClientSession() as session:
        client = Client(session, cluster.url)
        await client.create_app()
        reader = await open_stream(session, cluster, client)
        count, size = 600, 100_000  # 60 MB of events
        # A first round without the stalled client: what ingesting and streaming this much
        # costs the API anyway (its allocator's high-water mark). The reading client reads as
        # the events are sent, as a client that keeps up does.
        await asyncio.gather(
            send_large_events(client, count, size), reader.events(count, timeout_s=120)
        )
        with stalled_stream(cluster, client) as stalled:
            await asyncio.sleep(0.5)
            before = api.memory_info().rss
            peak = before

            async def watch() -> None:
                nonlocal peak
                while True:
                    peak = max(peak, api.memory_info().rss)
                    await asyncio.sleep(0.05)

            watcher = asyncio.create_task(watch())
            try:
                _, received = await asyncio.gather(
                    send_large_events(client, count, size), reader.events(count, timeout_s=120)
                )
            finally:
                watcher.cancel()
            reader.response.close()
            # The stalled client was dropped: after what the kernel buffers, its stream ends.
            await asyncio.sleep(3)  # beyond the send timeout
            stalled.settimeout(10)
            taken = 0
            try:
                while chunk := stalled.recv(1 << 20):
                    taken += len(chunk)
            except ConnectionResetError:
                pass
            except TimeoutError:
                raise AssertionError(cluster.logs(whole=True)) from None
    assert len({f.id for f in received}) == count  # the reading client got everything
    assert taken < 10 * MB, f"the stalled client was sent {taken / MB:.1f} MB"
    growth = (peak - before) / MB
    assert growth < 20, f"the API grew by {growth:.0f} MB while owing a stalled client 60 MB"
    assert "stream client too slow; dropped" in cluster.logs(whole=True)


async def test_streams_catch_up_when_redis_restarts_empty(cluster: AcceptanceCluster) -> None:
    """Notices published while Redis was away are lost; the streams lose no event."""
    await cluster.start_api()
    async with aiohttp.ClientSession() as session:
        client = Client(session, cluster.url)
        await client.create_app()
        readers = [await open_stream(session, cluster, client) for _ in range(3)]
        sent = [(await client.send(n))[1]["id"] for n in range(20)]
        cluster.restart_redis_empty()
        for n in range(20, 40):
            status, body = await client.send(n)
            assert status == 202
            sent.append(body["id"])
        for reader in readers:
            received = await reader.events(40, timeout_s=30)
            assert sorted(f.id for f in received) == sorted(sent)
            reader.response.close()


async def test_an_api_restart_ends_streams_at_once_and_they_resume_where_they_were(
    cluster: AcceptanceCluster,
) -> None:
    api = await cluster.start_api()
    async with aiohttp.ClientSession() as session:
        client = Client(session, cluster.url)
        await client.create_app()
        reader = await open_stream(session, cluster, client)
        first = [(await client.send(n))[1]["id"] for n in range(5)]
        seen = [f.id for f in await reader.events(5)]
        stopping = time.monotonic()
        api.send_signal(signal.SIGTERM)
        with pytest.raises((EOFError, aiohttp.ClientPayloadError)):
            await reader.events(1, timeout_s=10)
        assert await asyncio.to_thread(api.wait, 10) == 0
        assert time.monotonic() - stopping < 5  # the open stream did not hold shutdown up
        await cluster.start_api()
        later = [(await client.send(n))[1]["id"] for n in range(5, 10)]
        reader = await open_stream(session, cluster, client, last_event_id=seen[-1])
        seen += [f.id for f in await reader.events(5)]
        reader.response.close()
    assert seen == first + later
