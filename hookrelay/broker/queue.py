"""The delivery queue (arq on Redis): it only says "deliver X now / at T"; Postgres holds the
state. First attempts and retries go on separate lanes, so that a failing endpoint's retries
never hold up anyone's first attempt."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from arq.connections import ArqRedis

from hookrelay.broker.enqueue_many import DeliverTask, EnqueueMany
from hookrelay.broker.keys import Keys
from hookrelay.broker.tasks import (
    batch_task_id,
    delivery_task_id,
    reserved_task_id,
)

# New deliveries per queue task: a task's own cost (about four Redis round trips, and a claim and
# a record in Postgres) is shared by a batch, which a worker then sends concurrently.
TASK_BATCH = 100


class DeliveryQueue:
    """Enqueues `deliver` tasks on the lane that fits each delivery."""

    def __init__(self, redis: ArqRedis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._enqueue_many = EnqueueMany(redis)

    async def enqueue(
        self, deliveries: list[tuple[str, int]], defer_until: datetime | None = None
    ) -> int:
        """Enqueue one task per (delivery id, attempts made so far); return how many were new
        (a task that already exists is left as it is)."""
        return await self._enqueue_many(
            [
                DeliverTask(
                    delivery_task_id(delivery_id, attempts), self._lane(attempts), delivery_id
                )
                for delivery_id, attempts in deliveries
            ],
            defer_until,
        )

    async def enqueue_first_attempts(self, delivery_ids: list[str]) -> int:
        """Enqueue new deliveries due now, up to TASK_BATCH per task: a fan-out or a bulk replay
        costs the workers one task per batch rather than one per delivery."""
        lane = self._keys.first_attempt_lane
        tasks: list[DeliverTask] = []
        for start in range(0, len(delivery_ids), TASK_BATCH):
            batch = delivery_ids[start : start + TASK_BATCH]
            if len(batch) == 1:
                tasks.append(DeliverTask(delivery_task_id(batch[0], 0), lane, batch[0]))
            else:
                tasks.append(DeliverTask(batch_task_id(batch), lane, batch))
        return await self._enqueue_many(tasks, None)

    async def enqueue_reserved(self, delivery_id: str, attempts_made: int, delay_s: float) -> None:
        """Enqueue a task for a delivery whose rate-limit slot is reserved `delay_s` from now."""
        task_id = reserved_task_id(delivery_id, attempts_made)
        task = DeliverTask(task_id, self._lane(attempts_made), delivery_id, slot_reserved=True)
        await self._enqueue_many([task], datetime.now(UTC) + timedelta(seconds=delay_s))

    async def due_waiting(self) -> int:
        """Tasks due now that no worker has finished, across both lanes."""
        now_ms = round(time.time() * 1000)
        total = 0
        for lane in (self._keys.first_attempt_lane, self._keys.retry_lane):
            total += int(await self._redis.zcount(lane, "-inf", now_ms))
        return total

    def _lane(self, attempts_made: int) -> str:
        return self._keys.first_attempt_lane if attempts_made == 0 else self._keys.retry_lane
