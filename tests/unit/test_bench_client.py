"""The benchmark's lean HTTP client, against servers on loopback: what it sends, answers that
arrive in pieces, kept-alive connections, and connections that close."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from hookrelay.bench.client import Client, ResponseError


@pytest.fixture
async def echo() -> AsyncIterator[tuple[int, list[tuple[str, dict[str, str], bytes]], set[int]]]:
    """An aiohttp server that answers 202 with the body it got; what it got, and the ports its
    clients came from (one per connection)."""
    seen: list[tuple[str, dict[str, str], bytes]] = []
    peers: set[int] = set()

    async def answer(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append((request.path, dict(request.headers), body))
        peers.add(request.transport.get_extra_info("peername")[1])  # type: ignore[union-attr]
        return web.Response(status=202, body=b"got:" + body)

    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield port, seen, peers
    await runner.cleanup()


async def test_a_request_made_once_is_sent_again_and_again_on_one_connection(echo) -> None:
    port, seen, peers = echo
    client = Client("127.0.0.1", port)
    request = client.request("/v1/events", b'{"n":1}', {"Authorization": "Bearer k"})
    try:
        answers = [await client.send(request) for _ in range(3)]
    finally:
        client.close()
    assert answers == [(202, b'got:{"n":1}')] * 3
    assert [(path, body) for path, _, body in seen] == [("/v1/events", b'{"n":1}')] * 3
    assert seen[0][1]["Authorization"] == "Bearer k"
    assert seen[0][1]["Host"] == f"127.0.0.1:{port}"
    assert len(peers) == 1


async def test_concurrent_requests_open_up_to_the_limit_of_connections(echo) -> None:
    port, _, peers = echo
    client = Client("127.0.0.1", port, limit=4)
    request = client.request("/x", b"{}", {})
    try:
        answers = await asyncio.gather(*(client.send(request) for _ in range(40)))
    finally:
        client.close()
    assert answers == [(202, b"got:{}")] * 40
    assert 1 < len(peers) <= 4


@contextlib.asynccontextmanager
async def raw_server(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[int]:
    """A bare TCP server on loopback that runs `handle` per connection; its port. On the way
    out it waits for every connection's handler to end."""
    handlers: list[asyncio.Task[None]] = []

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        await handle(reader, writer)

    server = await asyncio.start_server(run, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await asyncio.wait_for(asyncio.gather(*handlers), 5)
        await server.wait_closed()


async def until_closed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Wait for the client to close its end, then close this one."""
    await reader.read()
    writer.close()
    await writer.wait_closed()


async def test_an_answer_in_pieces_is_read_whole() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)
        for piece in (b"HTTP/1.1 200 OK\r\nContent-Le", b"ngth: 5\r\n\r", b"\nhel", b"lo"):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.01)
        await until_closed(reader, writer)

    async with raw_server(handle) as port:
        client = Client("127.0.0.1", port)
        try:
            assert await client.send(client.request("/", b"{}", {})) == (200, b"hello")
        finally:
            client.close()


@pytest.mark.parametrize(
    ("first_answer", "error"),
    [("none, closed", ResponseError), ("too late", TimeoutError)],
)
async def test_a_failed_request_fails_alone_and_the_next_opens_another_connection(
    first_answer: str, error: type[Exception]
) -> None:
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)
        if connections == 1 and first_answer == "none, closed":
            writer.close()
            await writer.wait_closed()
            return
        if connections == 1:
            await asyncio.sleep(0.3)  # past the client's timeout
        writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await until_closed(reader, writer)

    async with raw_server(handle) as port:
        client = Client("127.0.0.1", port, timeout_s=0.1)
        request = client.request("/", b"{}", {})
        try:
            with pytest.raises(error):
                await client.send(request)
            assert await client.send(request) == (202, b"ok")
        finally:
            client.close()
    assert connections == 2


async def test_an_answer_without_a_length_is_an_error() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
        await writer.drain()
        await until_closed(reader, writer)

    async with raw_server(handle) as port:
        client = Client("127.0.0.1", port)
        try:
            with pytest.raises(ResponseError, match="no Content-Length"):
                await client.send(client.request("/", b"{}", {}))
        finally:
            client.close()
