"""Per-endpoint limits: concurrency within this worker process, and a rate across all workers."""

from __future__ import annotations

from collections import Counter

from redis.asyncio import Redis

# GCRA (a token bucket kept as one timestamp per endpoint): returns 0 and takes a slot when one
# is free, else the milliseconds until one will be. Redis's own clock keeps workers in step.
_GCRA = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allowed_at = tat - interval * (burst - 1)
if now < allowed_at then return allowed_at - now end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1000)
return 0
"""


# Deliveries that may start back to back before the spacing applies.
RATE_BURST = 1


class EndpointLimits:
    """Decides whether a delivery to an endpoint may start now."""

    def __init__(self, redis: Redis, key_prefix: str, concurrency: int) -> None:
        self._redis = redis
        self._key_prefix = key_prefix
        self._concurrency = concurrency
        self._running: Counter[str] = Counter()
        self._gcra = redis.register_script(_GCRA)

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

    async def rate_wait_s(self, endpoint_id: str, per_second: int) -> float:
        """Take a slot of the endpoint's rate limit: 0 if granted, else seconds until one frees.

        Deliveries start at least 1/`per_second` apart (no bursts), so no one-second window
        holds more than `per_second` of them.
        """
        interval_ms = 1000.0 / per_second
        wait_ms = await self._gcra(
            keys=[f"{self._key_prefix}:rate:{endpoint_id}"], args=[interval_ms, RATE_BURST]
        )
        return float(wait_ms) / 1000.0
