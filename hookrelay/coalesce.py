"""Concurrent callers' items, run together: one statement or round trip for many of them.

While one run is on its way (to Postgres, to Redis), the items that arrive wait and go together
in the next: at low load each item runs at once, alone, with no wait added; under load the runs
grow, and so does what one round trip, one statement and one commit carry. Group commit, in
short, with the group as large as the load makes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeAlias, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# What a run gives back for each of its items, in their order: a result, or the error that item
# alone gets (its neighbours' results stand).
Outcome: TypeAlias = R | BaseException
Run: TypeAlias = Callable[[list[T]], Awaitable[list[Outcome[R]]]]


class Pace:
    """Runs that start at most every `pace_s`: after a quiet spell the next starts at once."""

    def __init__(self, pace_s: float) -> None:
        self._pace_s = pace_s
        self._last_start = -math.inf

    def wait_s(self) -> float:
        """How long the next run must wait to keep the pace (0 or less: not at all)."""
        return self._last_start + self._pace_s - time.monotonic()

    def started(self) -> None:
        """A run starts now."""
        self._last_start = time.monotonic()


class Coalescer(Generic[T, R]):
    """Runs the items of concurrent callers together, at most `max_items` per run, one run at a
    time. A run that raises gives its error to every item of that run.

    With `pace_s`, a run starts at least that long after the previous one started (unless
    `max_items` are waiting): an item that arrives after a quiet spell runs at once, and under
    load the runs are at most 1/`pace_s` a second, each carrying what arrived meanwhile. For a
    run whose cost is mostly its own (a Redis round trip and a queue task), not its items'.
    """

    def __init__(self, run: Run[T, R], max_items: int, pace_s: float = 0.0) -> None:
        self._run = run
        self._max_items = max_items
        self._pace = Pace(pace_s)
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._running: asyncio.Task[None] | None = None
        self._full = asyncio.Event()

    async def submit(self, item: T) -> R:
        """Run `item` with the others waiting; its own result, or its own error. A caller
        cancelled before its run starts leaves its item out of it."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, done))
        if len(self._waiting) >= self._max_items:
            self._full.set()
        if self._running is None:
            self._running = loop.create_task(self._run_waiting())
            self._running.add_done_callback(self._ended)
        return await done

    def _ended(self, running: asyncio.Task[None]) -> None:
        """A run task cancelled before it began (a stopping process cancels every task) ran
        none of its code: its callers are cancelled here, and the next item starts another."""
        if self._running is running:
            self._running = None
            for _, done in self._waiting:
                done.cancel()
            self._waiting.clear()
        if not running.cancelled():
            running.exception()  # a bug: its callers have it; retrieved, so not logged again

    async def _run_waiting(self) -> None:
        taken: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._waiting:
                await self._wait_for_pace()
                self._pace.started()
                taken = self._waiting[: self._max_items]
                del self._waiting[: self._max_items]
                taken = [(item, done) for item, done in taken if not done.done()]
                if not taken:
                    continue
                try:
                    outcomes = await self._run([item for item, _ in taken])
                except Exception as exc:
                    outcomes = [exc] * len(taken)
                for (_, done), outcome in zip(taken, outcomes, strict=True):
                    if done.done():  # its caller was cancelled meanwhile
                        continue
                    if isinstance(outcome, BaseException):
                        done.set_exception(outcome)
                    else:
                        done.set_result(outcome)
        except BaseException as exc:
            # Cancelled (the process is stopping), or a bug: nobody waits for ever, and a bug
            # reaches every caller as itself.
            for _, done in taken + self._waiting:
                if not done.done():
                    if isinstance(exc, asyncio.CancelledError):
                        done.cancel()
                    else:
                        done.set_exception(exc)
            raise
        finally:
            self._running = None
            self._full.clear()

    async def _wait_for_pace(self) -> None:
        wait_s = self._pace.wait_s()
        if wait_s > 0 and len(self._waiting) < self._max_items:
            self._full.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), wait_s)
