"""Per-endpoint limits: concurrency within this worker process, and a rate across all workers."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sys
from collections.abc import AsyncIterator

from redis.asyncio import Redis

# Each call reserves the endpoint's next start slot (slots are 1/rate apart) and returns the
# milliseconds until it, 0 if it is now. Redis's own clock keeps every worker in step, and
# reserving, rather than asking "may I now?", lets a backlog wait once each for its own slot
# instead of waking together to ask again.
_RESERVE_SLOT = """
local interval = tonumber(ARGV[1])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local slot = tonumber(redis.call('GET', KEYS[1]) or now)
if slot < now then slot = now end
redis.call('SET', KEYS[1], slot + interval, 'PX', math.ceil(slot + interval - now) + 1000)
return slot - now
"""


class EndpointLimits:
    """Decides whether a delivery to an endpoint may start now."""

    def __init__(self, redis: Redis, key_prefix: str, concurrency: int) -> None:
        self._redis = redis
        self._key_prefix = key_prefix
        self._concurrency = concurrency
        # Per endpoint: its semaphore, and how many deliveries hold or await it (so that the
        # semaphores of idle endpoints can be dropped).
        self._slots: dict[str, tuple[asyncio.Semaphore, int]] = {}
        self._reserve_slot = redis.register_script(_RESERVE_SLOT)

    async def start(self, endpoint_id: str, wait_s: float) -> bool:
        """Take one of the endpoint's concurrency slots in this process, waiting up to `wait_s`
        (a fast endpoint frees one within milliseconds; a slow one is not waited for)."""
        semaphore, users = self._slots.get(endpoint_id) or (asyncio.Semaphore(self._concurrency), 0)
        self._slots[endpoint_id] = (semaphore, users + 1)
        try:
            # asyncio.timeout, not wait_for: a burst to one endpoint queues here, one waiter per
            # delivery, and wait_for would cost each of them a task of its own.
            async with asyncio.timeout(wait_s):
                await semaphore.acquire()
        except TimeoutError:
            self._leave(endpoint_id)
            return False
        except BaseException:  # cancelled: forget this waiter too
            self._leave(endpoint_id)
            raise
        return True

    def finish(self, endpoint_id: str) -> None:
        """Give back a slot taken by `start`."""
        self._slots[endpoint_id][0].release()
        self._leave(endpoint_id)

    def _leave(self, endpoint_id: str) -> None:
        semaphore, users = self._slots[endpoint_id]
        if users <= 1:
            del self._slots[endpoint_id]
        else:
            self._slots[endpoint_id] = (semaphore, users - 1)

    async def reserve_rate_slot(self, endpoint_id: str, per_second: int) -> float:
        """Reserve the endpoint's next start slot; return the seconds until it (0: now).

        Deliveries start at least 1/`per_second` apart, so no one-second window holds more
        than `per_second` of them.
        """
        wait_ms = await self._reserve_slot(
            keys=[f"{self._key_prefix}:rate:{endpoint_id}"], args=[1000.0 / per_second]
        )
        return float(wait_ms) / 1000.0


class SlotsBusy(Exception):
    """No slots came free in time."""


class Slots:
    """A semaphore that takes several units at once, so that a batch never holds part of what
    it needs while waiting for the rest (which could deadlock batches against each other).
    Waiters are served in order (a big batch is not overtaken forever by small ones), and
    units are given back synchronously, so a cancellation can never lose them."""

    def __init__(self, total: int) -> None:
        self._free = total
        self._total = total
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    @contextlib.asynccontextmanager
    async def take(self, wanted: int, timeout_s: float) -> AsyncIterator[None]:
        """Hold `wanted` units (at most all of them); raise SlotsBusy after `timeout_s`."""
        wanted = min(wanted, self._total)
        if self._waiters or self._free < wanted:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append((wanted, waiter))
            try:
                await asyncio.wait_for(asyncio.shield(waiter), timeout_s)
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._release(wanted)  # granted just as we gave up: give it back
                else:
                    waiter.cancel()
                    self._waiters = collections.deque(
                        w for w in self._waiters if w[1] is not waiter
                    )
                    self._wake()
                if isinstance(sys.exc_info()[1], TimeoutError):
                    raise SlotsBusy from None
                raise
        else:
            self._free -= wanted
        try:
            yield
        finally:
            self._release(wanted)

    def _release(self, count: int) -> None:
        self._free += count
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._waiters[0][0] <= self._free:
            wanted, waiter = self._waiters.popleft()
            if not waiter.done():
                self._free -= wanted
                waiter.set_result(None)
