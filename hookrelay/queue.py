"""The work queue (arq on Redis): it only says "deliver X now / at T"; Postgres holds the state."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import orjson
from arq.connections import ArqRedis, RedisSettings, create_pool
from redis.exceptions import RedisError

from hookrelay.errors import DependencyUnavailable

DELIVER_TASK = "deliver"


def job_serializer(job: dict[str, Any]) -> bytes:
    """JSON, never pickle: write access to Redis must not mean code execution in workers."""
    return orjson.dumps(job)


def job_deserializer(data: bytes) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(data)
    return result


def redis_settings(redis_url: str) -> RedisSettings:
    settings = RedisSettings.from_dsn(redis_url)
    # Fail fast and let the sweeper catch up, rather than hang a request on a dead Redis.
    settings.conn_timeout = 2
    settings.conn_retries = 1
    settings.conn_retry_delay = 0
    return settings


def delivery_job_id(delivery_id: str, attempts_made: int) -> str:
    """One job id per attempt: enqueueing the same attempt twice is a no-op in arq."""
    return f"{delivery_id}:{attempts_made}"


class DeliveryQueue:
    """Enqueues delivery jobs on one arq queue."""

    def __init__(self, redis: ArqRedis, queue_name: str) -> None:
        self.redis = redis
        self.queue_name = queue_name

    @classmethod
    async def connect(cls, redis_url: str, queue_name: str) -> DeliveryQueue:
        try:
            redis = await create_pool(
                redis_settings(redis_url),
                job_serializer=job_serializer,
                job_deserializer=job_deserializer,
                default_queue_name=queue_name,
            )
        except (RedisError, OSError) as exc:
            raise DependencyUnavailable("redis is unreachable") from exc
        return cls(redis, queue_name)

    async def close(self) -> None:
        await self.redis.aclose()

    async def ping(self) -> None:
        try:
            await self.redis.ping()
        except (RedisError, OSError) as exc:
            raise DependencyUnavailable("redis is unreachable") from exc

    async def enqueue(
        self, deliveries: list[tuple[str, int]], defer_until: datetime | None = None
    ) -> None:
        """Enqueue one job per (delivery id, attempts made so far)."""
        await asyncio.gather(
            *(
                self.redis.enqueue_job(
                    DELIVER_TASK,
                    delivery_id,
                    _job_id=delivery_job_id(delivery_id, attempts),
                    _queue_name=self.queue_name,
                    _defer_until=defer_until,
                )
                for delivery_id, attempts in deliveries
            )
        )
