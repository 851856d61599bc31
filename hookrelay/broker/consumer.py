"""Running one lane's queue tasks with arq's worker.

Two things here lean on arq's internals, which is why arq is pinned to the versions tested and
tests/integration/test_arq_contract.py fails when they change: LaneWorker overrides
`Worker.start_jobs` (and reads `Worker.tasks`, `max_jobs`, `job_counter` and the key that says
a task runs), and a graceful stop sets `allow_pick_jobs`, `burst` and `max_burst_jobs` on a
running worker.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from arq.worker import Retry, Worker, func

from hookrelay.broker.client import open_redis
from hookrelay.broker.keys import TASK_RUNNING_KEY_PREFIX
from hookrelay.broker.tasks import (
    DELIVER_TASK,
    DeliveryHandler,
    deserialize_task,
    serialize_task,
)

log = structlog.get_logger(__name__)

# How often a lane's worker writes its health-check key (see keys.py) to Redis.
HEALTH_CHECK_INTERVAL_S = 5
# A task may be retried many times (a slow or rate-limited endpoint puts it off again and
# again); arq's own limit on tries must never be what stops it.
MAX_TASK_TRIES = 1_000_000


class RetryTask(Exception):
    """Raised by a handler: run this queue task again, under the same id, after `after_s`."""

    def __init__(self, after_s: float) -> None:
        super().__init__(after_s)
        self.after_s = after_s


class LaneWorker(Worker):
    """arq's worker, minus round trips spent on tasks it cannot start.

    Each poll reads the ids of up to `queue_read_limit` due tasks (five times `max_jobs`, 100 at
    least), and arq tries each in turn, waiting for a free slot before each: three round trips,
    four when the task already runs. A running task stays among those ids until it ends,
    whichever worker runs it, and ids past the free slots were tried as slots freed, long after
    the poll read them: in a bulk replay of 100,000 (1,000 tasks, two workers), 13,600 tries for
    1,080 tasks started. Here a poll leaves out this worker's running tasks, then (one round
    trip) those whose in-progress key says another worker runs them, and passes on only as many
    ids as there are free slots; the next poll reads fresh ones.
    """

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        running = self.tasks
        startable = [
            task_id
            for task_id in map(bytes.decode, job_ids)
            if (task := running.get(task_id)) is None or task.done()
        ]
        if startable:
            elsewhere = await self.pool.mget([TASK_RUNNING_KEY_PREFIX + i for i in startable])
            startable = [i for i, key in zip(startable, elsewhere, strict=True) if key is None]
        free = max(0, self.max_jobs - self.job_counter)
        await super().start_jobs([task_id.encode() for task_id in startable[:free]])


class LaneConsumer:
    """Runs the `deliver` tasks of one lane with `handler`, until stopped."""

    def __init__(
        self,
        redis_url: str,
        lane: str,
        handler: DeliveryHandler,
        *,
        max_tasks: int,
        poll_delay_s: float,
        task_timeout_s: float,
    ) -> None:
        async def deliver(
            ctx: dict[str, Any], delivery: str | list[str], slot_reserved: bool = False
        ) -> None:
            try:
                await handler(delivery, slot_reserved)
            except RetryTask as exc:
                raise Retry(defer=exc.after_s) from None

        self._worker = LaneWorker(
            functions=[func(deliver, name=DELIVER_TASK, max_tries=MAX_TASK_TRIES)],
            queue_name=lane,
            redis_pool=open_redis(redis_url, lane),
            job_serializer=serialize_task,
            job_deserializer=deserialize_task,
            keep_result=0,
            poll_delay=poll_delay_s,
            max_jobs=max_tasks,
            job_timeout=task_timeout_s,
            health_check_interval=HEALTH_CHECK_INTERVAL_S,
            # The worker process handles signals and stops its lanes gracefully (see stop).
            handle_signals=False,
            log_results=False,
        )
        self._main: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        """Start taking tasks; the returned asyncio task ends if the lane's loop fails."""
        self._main = asyncio.create_task(self._worker.async_run())
        return self._main

    async def stop(self, grace_s: float) -> None:
        """Stop taking tasks, give running ones `grace_s` to finish, cancel the rest, close.

        A cancelled delivery keeps its lease; when the lease expires it is sent again.
        """
        worker, main = self._worker, self._main
        if main is not None:
            # In burst mode with no tasks left to start, arq's main loop waits for the running
            # ones and returns by itself, between Redis calls rather than in the middle of one.
            worker.allow_pick_jobs = False
            worker.burst = True
            worker.max_burst_jobs = 0
            try:
                await asyncio.wait_for(asyncio.shield(main), grace_s)
            except TimeoutError:
                log.warning("deliveries still running after the grace period; cancelling them")
                for task in worker.tasks.values():
                    task.cancel()
                main.cancel()
            except Exception:
                pass  # the lane had already failed; its runner logged it
            await asyncio.gather(main, *worker.tasks.values(), return_exceptions=True)
        # arq's close() awaits these tasks again and would re-raise a cancellation.
        worker.tasks.clear()
        try:
            await worker.close()
        except Exception as exc:
            log.warning("closing a lane failed", error=repr(exc))
