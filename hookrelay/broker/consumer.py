"""Running one lane's queue tasks with arq's worker.

Things here lean on arq's internals, which is why arq is pinned to the versions tested and
tests/integration/test_arq_contract.py fails when they change: LaneWorker overrides
`Worker.main`, `_poll_iteration` and `start_jobs` (and reads `Worker.tasks`, `max_jobs`,
`job_counter`, `_queue_read_offset` and the key that says a task runs), and a graceful stop sets
`allow_pick_jobs`, `burst` and `max_burst_jobs` on a running worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from functools import partial
from typing import Any

import structlog
from arq.utils import timestamp_ms
from arq.worker import Retry, Worker, func
from redis.commands.core import AsyncScript

from hookrelay.broker.client import open_redis
from hookrelay.broker.enqueue_many import announce_due
from hookrelay.broker.keys import TASK_RUNNING_KEY_PREFIX, due_channel
from hookrelay.broker.notices import listen
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
# A lane's worker with nothing due looks again at the latest after this, though nobody told it
# of a task: a notice lost while Redis was away, a killed worker's task whose lease ran out.
IDLE_POLL_S = 0.5


class RetryTask(Exception):
    """Raised by a handler: run this queue task again, under the same id, after `after_s`."""

    def __init__(self, after_s: float) -> None:
        super().__init__(after_s)
        self.after_s = after_s


# What arq's start_jobs checks and writes for each task, for many in one call: a task is taken
# if no worker runs it (its in-progress key), it is still in the lane and due (its score); it
# is then marked as running for the in-progress timeout. Up to ARGV[5] tasks are taken; each
# taken one is returned with its score.
_TAKE_TASKS = """
local running_prefix, lane, now_ms, running_ms = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local at_most = tonumber(ARGV[5])
local taken = {}
for i = 6, #ARGV do
    if #taken >= 2 * at_most then
        break
    end
    local task_id = ARGV[i]
    if redis.call('EXISTS', running_prefix .. task_id) == 0 then
        local score = redis.call('ZSCORE', lane, task_id)
        if score and tonumber(score) <= now_ms then
            redis.call('PSETEX', running_prefix .. task_id, running_ms, '1')
            taken[#taken + 1] = task_id
            taken[#taken + 1] = score
        end
    end
end
return taken
"""


class Alarm:
    """When a lane's worker looks for due tasks next: at once (`ring`), or when a task comes
    due (`ring_at`, the earliest time it was given)."""

    def __init__(self) -> None:
        self._rung = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def ring(self) -> None:
        self._rung.set()

    def ring_at(self, due_ms: float) -> None:
        """Ring when this process's clock reaches `due_ms` (unix ms, as arq scores tasks): a
        task is due by the same clock that the poll then reads it with, so clocks that differ
        between hosts delay nothing."""
        delay_s = (due_ms + 1) / 1000 - time.time()
        if delay_s <= 0:
            self.ring()
            return
        loop = asyncio.get_running_loop()
        at = loop.time() + delay_s
        if at >= self._timer_at:
            return  # an earlier ring is set; the poll then reads what comes due after it
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = loop.call_at(at, self._ring_on_time), at

    def _ring_on_time(self) -> None:
        self._timer, self._timer_at = None, math.inf
        self._rung.set()

    async def wait(self, at_most_s: float) -> None:
        """Until rung, or `at_most_s`."""
        if not self._rung.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._rung.wait(), at_most_s)
        self._rung.clear()


class LaneWorker(Worker):
    """arq's worker, polling when there is something to take, minus round trips spent on tasks
    it cannot start.

    arq polls every `poll_delay_s` (5 ms here), whether or not a task came: 7.6% of a CPU for
    an idle worker with its two lanes. Here a lane polls when told that tasks came due (a
    notice from whoever enqueued them, see enqueue_many.py), when the next task not yet due
    comes due (each poll reads its time in the same round trip), when a task ends that it ran
    and that asked to go again later (the others are told when it is due), when a task ends
    while due ones wait for room, and at least every IDLE_POLL_S. Only when a poll read as many
    ids as it may, with room left, does it look again after `poll_delay_s`.

    Each poll reads the ids of up to `queue_read_limit` due tasks (five times `max_jobs`, 100 at
    least), and arq tries each in turn, waiting for a free slot before each: four round trips
    per task (WATCH its in-progress key, EXISTS, ZSCORE, then MULTI/PSETEX/EXEC). A running task
    stays among those ids until it ends, whichever worker runs it, and ids past the free slots
    were tried as slots freed, long after the poll read them: in a bulk replay of 100,000 (1,000
    tasks, two workers), 13,600 tries for 1,080 tasks started. Here a poll leaves out this
    worker's running tasks and takes, in one round trip for them all (_TAKE_TASKS, the same
    checks and write as arq's, atomic in a script rather than watched), as many of the rest as
    it has room for; the next poll reads fresh ones.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._take_script: AsyncScript | None = None  # registered on first use
        self.alarm = Alarm()
        # Whether the last poll read as many ids as it may, with room left (more may be due).
        self._more_due = False
        # Whether due tasks wait for room: the next task to end rings.
        self._awaits_room = False
        # Running tasks that asked to go again: when each ends, the lane polls.
        self._retried: set[str] = set()

    async def retry_later(self, task_id: str, after_s: float) -> None:
        """A running task asks to go again in `after_s`: arq reschedules it once it ends, and
        then this lane polls (and reads when it is due); the lane's other workers are told now,
        since this one may have no room for it then."""
        self._retried.add(task_id)
        await announce_due(self.pool, self.queue_name, (time.time() + after_s) * 1000)

    async def main(self) -> None:
        """arq's `Worker.main` (the pool is given, and nothing runs on start-up), waiting
        between polls as the class says."""
        self.ctx["redis"] = self.pool
        while True:
            await self._poll_iteration()
            if self.burst and (
                0 <= self.max_burst_jobs <= self._jobs_started()
                or not await self.pool.zcard(self.queue_name)
            ):
                await asyncio.gather(*self.tasks.values())
                return
            if self._more_due and not self._awaits_room:
                await asyncio.sleep(self.poll_delay_s)
            else:
                await self.alarm.wait(IDLE_POLL_S)

    async def _poll_iteration(self) -> None:
        """arq's, reading also, in the same round trip, when the next task not yet due comes
        due."""
        count = self.queue_read_limit
        if self.burst and self.max_burst_jobs >= 0:
            burst_jobs_remaining = self.max_burst_jobs - self._jobs_started()
            if burst_jobs_remaining < 1:
                return
            count = min(burst_jobs_remaining, count)
        self._more_due = self._awaits_room = False
        if self.allow_pick_jobs:
            if self.job_counter < self.max_jobs:
                now = timestamp_ms()
                async with self.pool.pipeline(transaction=False) as pipe:
                    pipe.zrangebyscore(
                        self.queue_name,
                        min=float("-inf"),
                        max=now,
                        start=self._queue_read_offset,
                        num=count,
                    )
                    pipe.zrangebyscore(
                        self.queue_name, min=f"({now}", max="+inf", start=0, num=1, withscores=True
                    )
                    job_ids, upcoming = await pipe.execute()
                for _, due_ms in upcoming:
                    self.alarm.ring_at(due_ms)
                self._more_due = len(job_ids) >= count
                await self.start_jobs(job_ids)
            else:
                self._awaits_room = True
        if self.allow_abort_jobs:
            await self._cancel_aborted_jobs()
        for job_id, t in list(self.tasks.items()):
            if t.done():
                del self.tasks[job_id]
                t.result()  # errors in run_job come out here, as in arq's
        await self.heart_beat()

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """Start as many of the tasks `job_ids` as there is room for, that nobody runs and that
        are due; what arq's `start_jobs` does for each, in one round trip for all."""
        running = self.tasks
        startable = [
            task_id
            for task_id in map(bytes.decode, job_ids)
            if (task := running.get(task_id)) is None or task.done()
        ]
        free = max(0, self.max_jobs - self.job_counter)
        if not startable or not free:
            self._awaits_room = bool(startable)
            return
        taken = await self.take_tasks(startable, free)
        if len(taken) == free and len(startable) > free:
            self._awaits_room = True
        for task_id, score in taken:
            await self.sem.acquire()  # never waits: there is room for each
            self.job_counter += 1
            task = self.loop.create_task(self.run_job(task_id, score))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            task.add_done_callback(partial(self._task_ended, task_id))
            running[task_id] = task

    async def take_tasks(self, task_ids: list[str], at_most: int) -> list[tuple[str, int]]:
        """Mark up to `at_most` of `task_ids` as running here, in order, skipping those that
        run elsewhere or are not due (any more); the tasks taken, with their scores."""
        if self._take_script is None:
            self._take_script = self.pool.register_script(_TAKE_TASKS)
        taken = await self._take_script(
            args=[
                TASK_RUNNING_KEY_PREFIX,
                self.queue_name,
                timestamp_ms(),
                int(self.in_progress_timeout_s * 1000),
                at_most,
                *task_ids,
            ]
        )
        # arq writes whole ms; a score written otherwise is taken as its whole ms.
        return [(taken[n].decode(), int(float(taken[n + 1]))) for n in range(0, len(taken), 2)]

    def _task_ended(self, task_id: str, _: asyncio.Task[None]) -> None:
        # After arq rescheduled it (a retried task): the poll reads when it comes due.
        if task_id in self._retried:
            self._retried.discard(task_id)
            self.alarm.ring()
        if self._awaits_room:
            self._awaits_room = False
            self.alarm.ring()


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
                await self._worker.retry_later(ctx["job_id"], exc.after_s)
                raise Retry(defer=exc.after_s) from None

        self._redis_url = redis_url
        self._due_channel = due_channel(lane)

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
        self._listener: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        """Start taking tasks; the returned asyncio task ends if the lane's loop fails."""
        alarm = self._worker.alarm
        # Each (re)subscription rings at once: tasks may have come while nobody listened.
        self._listener = asyncio.create_task(
            listen(self._redis_url, self._due_channel, self._on_due, alarm.ring)
        )
        self._main = asyncio.create_task(self._worker.async_run())
        return self._main

    def _on_due(self, notice: str) -> None:
        """A notice that tasks come due at a time (unix ms)."""
        try:
            due_ms = float(notice)
        except ValueError:
            due_ms = math.nan
        if not math.isfinite(due_ms):
            log.warning("a due notice that is not a time", notice=notice[:100])
            return
        self._worker.alarm.ring_at(due_ms)

    async def stop(self, grace_s: float) -> None:
        """Stop taking tasks, give running ones `grace_s` to finish, cancel the rest, close.

        A cancelled delivery keeps its lease; when the lease expires it is sent again.
        """
        worker, main = self._worker, self._main
        if self._listener is not None:
            self._listener.cancel()
        if main is not None:
            # In burst mode with no tasks left to start, arq's main loop waits for the running
            # ones and returns by itself, between Redis calls rather than in the middle of one.
            worker.allow_pick_jobs = False
            worker.burst = True
            worker.max_burst_jobs = 0
            worker.alarm.ring()
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
        if self._listener is not None:
            await asyncio.gather(self._listener, return_exceptions=True)
        # arq's close() awaits these tasks again and would re-raise a cancellation.
        worker.tasks.clear()
        try:
            await worker.close()
        except Exception as exc:
            log.warning("closing a lane failed", error=repr(exc))
