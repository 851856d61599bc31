"""A process's connection to Redis: one pool, shared by the queue, the notices, the metric
totals and the rate slots; lanes of queue tasks get pools of their own."""

from __future__ import annotations

from redis.exceptions import RedisError

from hookrelay.broker.client import open_redis
from hookrelay.broker.consumer import LaneConsumer
from hookrelay.broker.keys import Keys
from hookrelay.broker.metrics import MetricTotals
from hookrelay.broker.notices import Notices
from hookrelay.broker.queue import DeliveryQueue
from hookrelay.broker.rate_limits import RateSlots
from hookrelay.broker.tasks import DeliveryHandler
from hookrelay.errors import DependencyUnavailable


class Broker:
    """Everything hookrelay keeps in Redis, for one deployment (`namespace`, see keys.py).

    It connects on first use, so a process starts while Redis is down and reconnects by itself
    when Redis is back.
    """

    def __init__(self, redis_url: str, namespace: str) -> None:
        self.keys = Keys(namespace)
        self._redis_url = redis_url
        self._redis = open_redis(redis_url, self.keys.first_attempt_lane)
        self.queue = DeliveryQueue(self._redis, self.keys)
        self.notices = Notices(self._redis, redis_url, self.keys)
        self.metrics = MetricTotals(self._redis, self.keys.metrics)
        self.rate_slots = RateSlots(self._redis, self.keys)

    async def ping(self) -> None:
        """Raise DependencyUnavailable unless Redis answers."""
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            raise DependencyUnavailable("redis is unreachable") from exc

    async def close(self) -> None:
        await self._redis.aclose(close_connection_pool=True)

    def lane_consumer(
        self,
        lane: str,
        handler: DeliveryHandler,
        *,
        max_tasks: int,
        poll_delay_s: float,
        task_timeout_s: float,
    ) -> LaneConsumer:
        """A consumer of `lane`'s tasks (with a pool of its own), not yet started."""
        return LaneConsumer(
            self._redis_url,
            lane,
            handler,
            max_tasks=max_tasks,
            poll_delay_s=poll_delay_s,
            task_timeout_s=task_timeout_s,
        )
