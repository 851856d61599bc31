"""Per-endpoint limits: concurrency within this worker process, and a rate across all workers."""

from __future__ import annotations

import asyncio
import contextlib
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
            await asyncio.wait_for(semaphore.acquire(), wait_s)
        except TimeoutError:
            self._leave(endpoint_id)
            return False
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


class Slots:
    """A semaphore that takes several units at once, so that a batch never holds part of what
    it needs while waiting for the rest (which could deadlock batches against each other)."""

    def __init__(self, total: int) -> None:
        self._free = total
        self._total = total
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def take(self, wanted: int) -> AsyncIterator[None]:
        wanted = min(wanted, self._total)
        async with self._changed:
            await self._changed.wait_for(lambda: self._free >= wanted)
            self._free -= wanted
        try:
            yield
        finally:
            async with self._changed:
                self._free += wanted
                self._changed.notify_all()
