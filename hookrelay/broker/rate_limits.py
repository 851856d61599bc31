"""Per-endpoint start rates across all workers, kept in Redis."""

from __future__ import annotations

from redis.asyncio import Redis

from hookrelay.broker.keys import Keys

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


class RateSlots:
    """Hands out each endpoint's start slots, shared by every worker process."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._keys = keys
        self._reserve_slot = redis.register_script(_RESERVE_SLOT)

    async def reserve(self, endpoint_id: str, per_second: int) -> float:
        """Reserve the endpoint's next start slot; return the seconds until it (0: now).

        Deliveries start at least 1/`per_second` apart, so no one-second window holds more
        than `per_second` of them.
        """
        wait_ms = await self._reserve_slot(
            keys=[self._keys.rate(endpoint_id)], args=[1000.0 / per_second]
        )
        return float(wait_ms) / 1000.0
