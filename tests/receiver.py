"""A real HTTP receiver for tests: records every request, answers as told."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Collects requests; `respond` decides each answer (default: 200)."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    respond: Callable[[Received], Awaitable[web.StreamResponse]] | None = None
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        received = Received(request.path, dict(request.headers), await request.read())
        async with self._arrived:
            self.requests.append(received)
            self._arrived.notify_all()
        if self.respond is not None:
            return await self.respond(received)
        return web.Response(text="ok")

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    async def wait_for(self, count: int, path: str | None = None, timeout_s: float = 10.0) -> None:
        """Wait until `count` requests arrived (at `path`, if given)."""

        def enough() -> bool:
            got = self.requests if path is None else self.at(path)
            return len(got) >= count

        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(enough), timeout_s)


async def start_receiver(receiver: Receiver, host: str = "127.0.0.1") -> web.AppRunner:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = runner.addresses[0][1]
    receiver.url = f"http://{host}:{port}"
    return runner


class Fault:
    """Makes a receiver answer 500 at `path` (every path if None) until `fixed` is set."""

    def __init__(self, receiver: Receiver, path: str | None = None) -> None:
        self.fixed = False
        self.path = path
        receiver.respond = self.answer

    async def answer(self, received: Received) -> web.Response:
        failing = not self.fixed and self.path in (None, received.path)
        return web.Response(status=500 if failing else 200)
