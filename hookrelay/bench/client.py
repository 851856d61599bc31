"""The benchmark's load generator: a minimal HTTP/1.1 client for one host, on kept-alive
connections, that posts ready-made requests.

The client shares the CPUs it measures. aiohttp's client took 225-360 µs of CPU per event at
1,000 events/s, more than the sink it talks to; this one does only what the benchmark needs
(a POST with a body and a few headers, an answer with a Content-Length) and took 107-190 µs
(the benchmark's pacing of its requests included), so that the figures describe hookrelay more
than its load.
"""

from __future__ import annotations

import asyncio
from collections import deque


class ResponseError(Exception):
    """The connection closed, or answered with something this client does not read."""


class _Connection(asyncio.Protocol):
    """One kept-alive connection: one request at a time, its answer parsed as it arrives."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.answer: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.answer is None or self.answer.done():
            # Bytes no request asked for would be read as the next one's answer.
            assert self.transport is not None
            self.transport.close()
            return
        self.buffer += data
        self._parse()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(ResponseError(f"connection closed: {exc!r}"))

    def request(self, data: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.answer

    def _parse(self) -> None:
        assert self.answer is not None
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        length = None
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length is None:
            self.answer.set_exception(ResponseError(f"no Content-Length in: {head!r}"))
            return
        if len(self.buffer) < end + 4 + length:
            return
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        self.answer.set_result((int(head[0].split(" ", 2)[1]), body))


class Client:
    """Posts to one `host:port` on up to `limit` kept-alive connections; a request not answered
    within `timeout_s` fails with TimeoutError."""

    def __init__(self, host: str, port: int, limit: int = 256, timeout_s: float = 60.0) -> None:
        self.host, self.port = host, port
        self.timeout_s = timeout_s
        self._idle: deque[_Connection] = deque()
        self._room = asyncio.Semaphore(limit)

    def request(self, path: str, body: bytes, headers: dict[str, str]) -> bytes:
        """The bytes of a POST, made once and sent as often as wanted."""
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines.append(f"Content-Length: {len(body)}")
        lines += [f"{name}: {value}" for name, value in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Send a request made by `request`: its status and body."""
        async with self._room:
            connection = self._idle.pop() if self._idle else None
            if connection is None or connection.closed:
                _, connection = await asyncio.get_running_loop().create_connection(
                    _Connection, self.host, self.port
                )
            try:
                answer = await asyncio.wait_for(connection.request(request), self.timeout_s)
            except BaseException:
                # Cancelled or failed mid-answer: what comes next on it would be misread.
                if connection.transport is not None:
                    connection.transport.close()
                raise
            if not connection.closed:
                self._idle.append(connection)
            return answer

    def close(self) -> None:
        while self._idle:
            connection = self._idle.pop()
            if connection.transport is not None:
                connection.transport.close()
