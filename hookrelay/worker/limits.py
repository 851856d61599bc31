"""Per-endpoint limits: concurrency within this worker process, and a rate across all workers."""

from __future__ import annotations

from collections import Counter

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
        self._running: Counter[str] = Counter()
        self._reserve_slot = redis.register_script(_RESERVE_SLOT)

    def try_start(self, endpoint_id: str) -> bool:
        """Take one of the endpoint's concurrency slots in this process, if one is free."""
        if self._running[endpoint_id] >= self._concurrency:
            return False
        self._running[endpoint_id] += 1
        return True

    def finish(self, endpoint_id: str) -> None:
        self._running[endpoint_id] -= 1
        if self._running[endpoint_id] <= 0:
            del self._running[endpoint_id]

    async def reserve_rate_slot(self, endpoint_id: str, per_second: int) -> float:
        """Reserve the endpoint's next start slot; return the seconds until it (0: now).

        Deliveries start at least 1/`per_second` apart, so no one-second window holds more
        than `per_second` of them.
        """
        wait_ms = await self._reserve_slot(
            keys=[f"{self._key_prefix}:rate:{endpoint_id}"], args=[1000.0 / per_second]
        )
        return float(wait_ms) / 1000.0
