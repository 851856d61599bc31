"""The workers' delivery metrics, summed in one Redis hash (each field one Prometheus sample)."""

from __future__ import annotations

from collections.abc import Mapping

from redis.asyncio import Redis

from hookrelay.errors import DependencyUnavailable


class MetricTotals:
    """The shared totals every worker adds its counts to, and the API reads."""

    def __init__(self, redis: Redis, key: str) -> None:
        self._redis = redis
        self._key = key

    async def add(self, counts: Mapping[str, int], sums: Mapping[str, float]) -> None:
        """Add counts and sums to their fields, in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for field, value in counts.items():
                pipe.hincrby(self._key, field, value)
            for field, total in sums.items():
                pipe.hincrbyfloat(self._key, field, total)
            await pipe.execute()

    async def read(self) -> dict[str, float]:
        """Every field's total (sample name → value)."""
        try:
            # redis-py types hgetall as sync-or-async; on the asyncio client it is a coroutine.
            raw: dict[bytes, bytes] = await self._redis.hgetall(self._key)  # type: ignore[misc]
        except Exception as exc:
            raise DependencyUnavailable("redis is unreachable") from exc
        return {field.decode(): float(value) for field, value in raw.items()}
