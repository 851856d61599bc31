"""What hookrelay relies on inside arq, checked against a real Redis: arq is pinned to the
versions tested (pyproject.toml), and an upgrade that changes any of these fails here.

- The batched enqueue writes arq's keys and payloads itself (a Lua copy of `enqueue_job`):
  arq's own, unpatched worker must run those tasks, with their arguments intact.
- The names of arq's keys it writes and reads: the task's payload and its result.
- A lane is a sorted set scored by due time in ms (the queue's backlog count reads it).
- LaneWorker overrides `Worker.main`, `_poll_iteration` and `start_jobs` (taking tasks as arq
  does: its key that says a task runs, the task's score) and reads `Worker.tasks`, `max_jobs`,
  `job_counter`, `sem` and `_queue_read_offset`.
- A graceful stop sets `allow_pick_jobs`, `burst` and `max_burst_jobs` on a running worker.
- `Retry` runs a task again under the same id.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from arq.connections import RedisSettings
from arq.worker import Worker, func
from redis.asyncio import Redis

from hookrelay.broker import Broker, LaneConsumer, RetryTask
from hookrelay.broker.client import open_redis
from hookrelay.broker.consumer import LaneWorker
from hookrelay.broker.keys import TASK_KEY_PREFIX, TASK_RESULT_KEY_PREFIX, TASK_RUNNING_KEY_PREFIX
from hookrelay.broker.tasks import (
    DELIVER_TASK,
    delivery_task_id,
    deserialize_task,
    serialize_task,
)
from tests.integration.api_calls import wait_until

DAY_MS = 86_400_000
# The arq methods a lane copies (main, _poll_iteration), stands in for (start_jobs) or relies on
# as they are (the rest), by a digest of their source in arq 0.28.0: a release that changes any
# of them must be read before a lane runs with it.
ARQ_SOURCES = {
    "main": "45ca1591c9717466",
    "_poll_iteration": "f8d39d823a0a59f2",
    "start_jobs": "b45797cfa40bed7f",
    "_release_sem_dec_counter_on_complete": "0ed101482e942c33",
    "run_job": "589a19059ff84ee7",
    "finish_job": "903f09c92830d3fd",
}

Ran = list[tuple[str | list[str], bool]]


def new_ids(count: int) -> list[str]:
    """Delivery ids no other test uses (arq's task keys are shared by every namespace)."""
    return [f"dlv_{uuid.uuid4().hex}" for _ in range(count)]


async def run_with_arqs_own_worker(
    redis_url: str, lane: str, keep_result_s: int = 0
) -> tuple[Ran, Worker]:
    """Run `lane`'s due tasks with arq's unpatched Worker in burst mode; what they were given."""
    ran: Ran = []

    async def deliver(
        ctx: dict[str, Any], delivery: str | list[str], slot_reserved: bool = False
    ) -> None:
        ran.append((delivery, slot_reserved))

    worker = Worker(
        functions=[func(deliver, name=DELIVER_TASK)],
        queue_name=lane,
        redis_settings=RedisSettings.from_dsn(redis_url),
        job_serializer=serialize_task,
        job_deserializer=deserialize_task,
        burst=True,
        poll_delay=0.01,
        keep_result=keep_result_s,
        handle_signals=False,
    )
    try:
        await asyncio.wait_for(worker.async_run(), 10)
    finally:
        await worker.close()
    return ran, worker


def recording_consumer(broker: Broker, lane: str, ran: Ran, **handler_kwargs: Any) -> LaneConsumer:
    async def handler(delivery: str | list[str], slot_reserved: bool) -> None:
        ran.append((delivery, slot_reserved))

    return broker.lane_consumer(
        lane, handler, max_tasks=10, poll_delay_s=0.01, task_timeout_s=10, **handler_kwargs
    )


def test_the_arq_methods_a_lane_copies_are_those_it_was_written_against() -> None:
    changed = [
        name
        for name, digest in ARQ_SOURCES.items()
        if hashlib.sha256(inspect.getsource(getattr(Worker, name)).encode()).hexdigest()[:16]
        != digest
    ]
    assert not changed, f"arq's {changed} changed: compare them with LaneWorker's"


async def test_arqs_own_worker_runs_tasks_written_by_the_batched_enqueue(
    broker: Broker, redis_url: str, redis_client: Redis
) -> None:
    alone, *batch = new_ids(3)
    [retried] = new_ids(1)
    assert await broker.queue.enqueue_first_attempts([alone]) == 1
    assert await broker.queue.enqueue_first_attempts(batch) == 1
    assert await broker.queue.enqueue([(retried, 2)]) == 1

    ran, worker = await run_with_arqs_own_worker(redis_url, broker.keys.first_attempt_lane)
    assert (worker.jobs_complete, worker.jobs_failed) == (2, 0)
    assert sorted(ran, key=str) == sorted([(alone, False), (batch, False)], key=str)
    ran, worker = await run_with_arqs_own_worker(redis_url, broker.keys.retry_lane)
    assert (worker.jobs_complete, worker.jobs_failed) == (1, 0)
    assert ran == [(retried, False)]
    # Done and forgotten, as arq does with its own tasks.
    assert await redis_client.zcard(broker.keys.first_attempt_lane) == 0
    assert await redis_client.exists(TASK_KEY_PREFIX + delivery_task_id(alone, 0)) == 0


async def test_arqs_own_worker_runs_a_task_for_a_reserved_slot_with_its_keyword(
    broker: Broker, redis_url: str
) -> None:
    [delivery] = new_ids(1)
    await broker.queue.enqueue_reserved(delivery, 1, delay_s=0)
    ran, _ = await run_with_arqs_own_worker(redis_url, broker.keys.retry_lane)
    assert ran == [(delivery, True)]


async def test_our_lane_consumer_runs_tasks_written_by_the_batched_enqueue(
    broker: Broker, redis_client: Redis
) -> None:
    alone, *batch = new_ids(3)
    await broker.queue.enqueue_first_attempts([alone])
    await broker.queue.enqueue_first_attempts(batch)
    lane = broker.keys.first_attempt_lane
    ran: Ran = []
    consumer = recording_consumer(broker, lane, ran)
    consumer.start()
    try:

        async def both_ran() -> bool:
            return len(ran) == 2

        await wait_until(both_ran, "both tasks run", 5)
        # arq's worker writes its health-check key beside the lane (see keys.py).
        assert await redis_client.exists(f"{lane}:health-check") == 1
    finally:
        await consumer.stop(grace_s=1)
    assert sorted(ran, key=str) == sorted([(alone, False), (batch, False)], key=str)


async def test_the_batched_enqueue_writes_what_arqs_enqueue_job_writes(
    broker: Broker, redis_url: str, redis_client: Redis
) -> None:
    by_arq, by_us = new_ids(2)
    lane = broker.keys.first_attempt_lane
    arq_redis = open_redis(redis_url, lane)
    try:
        written = await arq_redis.enqueue_job(
            DELIVER_TASK, by_arq, _job_id=delivery_task_id(by_arq, 0), _queue_name=lane
        )
        assert written is not None
        assert await broker.queue.enqueue([(by_us, 0)]) == 1
        now_ms = time.time() * 1000

        payloads = {}
        for delivery in (by_arq, by_us):
            task_id = delivery_task_id(delivery, 0)
            score = await redis_client.zscore(lane, task_id)
            assert score is not None and abs(score - now_ms) < 5000  # due now, in ms
            key = TASK_KEY_PREFIX + task_id
            assert abs(await redis_client.pttl(key) - DAY_MS) < 10_000  # arq's expires_extra_ms
            payloads[delivery] = orjson.loads(await redis_client.get(key))
        ours, arqs = payloads[by_us], payloads[by_arq]
        assert set(ours) == set(arqs)
        assert {k: v for k, v in ours.items() if k != "et"} == {
            k: (v if k != "a" else [by_us]) for k, v in arqs.items() if k != "et"
        }
        assert abs(ours["et"] - arqs["et"]) < 5000

        # Each refuses a task the other wrote: they see the same keys.
        assert await broker.queue.enqueue([(by_arq, 0)]) == 0
        again = await arq_redis.enqueue_job(
            DELIVER_TASK, by_us, _job_id=delivery_task_id(by_us, 0), _queue_name=lane
        )
        assert again is None
    finally:
        await arq_redis.aclose(close_connection_pool=True)


async def test_a_task_whose_result_arq_keeps_is_not_enqueued_again(
    broker: Broker, redis_url: str, redis_client: Redis
) -> None:
    [delivery] = new_ids(1)
    task_id = delivery_task_id(delivery, 0)
    await broker.queue.enqueue([(delivery, 0)])
    await run_with_arqs_own_worker(redis_url, broker.keys.first_attempt_lane, keep_result_s=60)
    try:
        assert await redis_client.exists(TASK_RESULT_KEY_PREFIX + task_id) == 1
        assert await broker.queue.enqueue([(delivery, 0)]) == 0
    finally:
        await redis_client.delete(TASK_RESULT_KEY_PREFIX + task_id)


async def test_the_backlog_count_reads_arqs_due_times(broker: Broker, redis_url: str) -> None:
    due, later, ours_later = new_ids(3)
    lane = broker.keys.first_attempt_lane
    arq_redis = open_redis(redis_url, lane)
    try:
        await arq_redis.enqueue_job(DELIVER_TASK, due, _job_id=due)
        await arq_redis.enqueue_job(DELIVER_TASK, later, _job_id=later, _defer_by=60)
    finally:
        await arq_redis.aclose(close_connection_pool=True)
    await broker.queue.enqueue([(ours_later, 1)], datetime.now(UTC) + timedelta(seconds=60))
    assert await broker.queue.due_waiting() == 1


async def test_a_task_that_asks_to_retry_runs_again_under_the_same_id(
    broker: Broker,
) -> None:
    [delivery] = new_ids(1)
    await broker.queue.enqueue([(delivery, 1)])
    runs: list[float] = []

    async def handler(task_delivery: str | list[str], slot_reserved: bool) -> None:
        runs.append(time.monotonic())
        if len(runs) == 1:
            raise RetryTask(0.2)

    consumer = broker.lane_consumer(
        broker.keys.retry_lane, handler, max_tasks=10, poll_delay_s=0.01, task_timeout_s=10
    )
    consumer.start()
    try:

        async def ran_twice() -> bool:
            return len(runs) == 2

        await wait_until(ran_twice, "the task run again", 5)
    finally:
        await consumer.stop(grace_s=1)
    assert runs[1] - runs[0] >= 0.2
    assert await broker.queue.due_waiting() == 0  # done, not left behind under another id


def tasks_taken(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], list[str]]]:
    """From now on, each call of a lane's `take_tasks` (its one round trip that starts tasks):
    the ids it was given, and those it took."""
    calls: list[tuple[list[str], list[str]]] = []
    take_tasks = LaneWorker.take_tasks

    async def recording(self: LaneWorker, task_ids: list[str], at_most: int) -> Any:
        taken = await take_tasks(self, task_ids, at_most)
        calls.append((list(task_ids), [task_id for task_id, _ in taken]))
        return taken

    monkeypatch.setattr(LaneWorker, "take_tasks", recording)
    return calls


async def test_a_lane_checks_each_task_in_redis_once_however_long_it_runs(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A running task stays in its lane's sorted set, so every poll reads its id again; only
    the first read goes to Redis to take it."""
    calls = tasks_taken(monkeypatch)
    [delivery, *others] = new_ids(6)
    await broker.queue.enqueue([(delivery, 0)])
    finished = asyncio.Event()

    async def slow(task_delivery: str | list[str], slot_reserved: bool) -> None:
        if task_delivery == delivery:
            await asyncio.sleep(0.5)
            finished.set()

    consumer = broker.lane_consumer(
        broker.keys.first_attempt_lane, slow, max_tasks=10, poll_delay_s=0.01, task_timeout_s=10
    )
    consumer.start()
    try:
        # Each task enqueued meanwhile makes the lane poll again.
        for other in others:
            await asyncio.sleep(0.05)
            await broker.queue.enqueue([(other, 0)])
        await asyncio.wait_for(finished.wait(), 5)
    finally:
        await consumer.stop(grace_s=1)
    task_id = delivery_task_id(delivery, 0)
    assert len(calls) >= 3  # polls while it ran, for the tasks enqueued meanwhile
    assert sum(task_id in given for given, _ in calls) == 1


async def test_lanes_sharing_a_queue_run_each_task_once_and_take_no_more_than_their_room(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers poll one lane, and a task another worker runs stays in it until it ends:
    each task runs once, and a lane takes no more at once than it has room for."""
    calls = tasks_taken(monkeypatch)
    tasks = 24
    await broker.queue.enqueue([(delivery, 0) for delivery in new_ids(tasks)])
    ran: list[str | list[str]] = []

    async def slow(task_delivery: str | list[str], slot_reserved: bool) -> None:
        await asyncio.sleep(0.1)
        ran.append(task_delivery)

    async def all_ran() -> bool:
        return len(ran) == tasks

    consumers = [
        broker.lane_consumer(
            broker.keys.first_attempt_lane, slow, max_tasks=3, poll_delay_s=0.01, task_timeout_s=10
        )
        for _ in range(2)
    ]
    for consumer in consumers:
        consumer.start()
    try:
        await wait_until(all_ran, "every task run", 10)
    finally:
        for consumer in consumers:
            await consumer.stop(grace_s=1)
    assert sorted(ran) == sorted(set(ran))
    assert max(len(taken) for _, taken in calls) <= 3
    taken_ids = [task_id for _, taken in calls for task_id in taken]
    assert sorted(taken_ids) == sorted(set(taken_ids))  # by one lane only, once


async def test_a_poll_passes_on_no_task_another_worker_runs_and_no_more_than_its_free_slots(
    broker: Broker, monkeypatch: pytest.MonkeyPatch, redis_client: Redis
) -> None:
    """arq's in-progress key says another worker runs a task: the lane leaves it to it; of the
    rest it takes as many as it has room for (one round trip for them all)."""
    calls = tasks_taken(monkeypatch)
    deliveries = new_ids(6)
    ids = [delivery_task_id(delivery, 0) for delivery in deliveries]
    await broker.queue.enqueue([(delivery, 0) for delivery in deliveries])
    for running_elsewhere in ids[:3]:
        await redis_client.set(TASK_RUNNING_KEY_PREFIX + running_elsewhere, b"1", px=10_000)

    async def ran(task_delivery: str | list[str], slot_reserved: bool) -> None:
        pass

    consumer = broker.lane_consumer(
        broker.keys.first_attempt_lane, ran, max_tasks=2, poll_delay_s=0.01, task_timeout_s=10
    )
    try:
        await consumer._worker.start_jobs([task_id.encode() for task_id in ids])
        assert calls == [(ids, [ids[3], ids[4]])]
        assert sorted(consumer._worker.tasks) == sorted([ids[3], ids[4]])
        await asyncio.gather(*consumer._worker.tasks.values())
    finally:
        await consumer.stop(grace_s=1)
        await redis_client.delete(*(TASK_RUNNING_KEY_PREFIX + task_id for task_id in ids))


async def test_stopping_a_lane_lets_its_running_task_finish_and_starts_no_other(
    broker: Broker, redis_client: Redis
) -> None:
    first, second = new_ids(2)
    await broker.queue.enqueue([(first, 0)])
    started, release = asyncio.Event(), asyncio.Event()
    ran: list[str | list[str]] = []

    async def handler(delivery: str | list[str], slot_reserved: bool) -> None:
        started.set()
        await release.wait()
        ran.append(delivery)

    lane = broker.keys.first_attempt_lane
    consumer = broker.lane_consumer(
        lane, handler, max_tasks=10, poll_delay_s=0.01, task_timeout_s=10
    )
    main = consumer.start()
    await asyncio.wait_for(started.wait(), 5)
    stopping = asyncio.create_task(consumer.stop(grace_s=5))
    await asyncio.sleep(0.05)
    await broker.queue.enqueue([(second, 0)])
    await asyncio.sleep(0.1)  # many polls' worth: none may take it
    assert not stopping.done()  # waiting for the running task
    release.set()
    await asyncio.wait_for(stopping, 5)
    assert main.done() and not main.cancelled()
    assert ran == [first]
    assert await redis_client.zscore(lane, delivery_task_id(second, 0)) is not None  # left queued


async def test_a_task_still_running_after_the_grace_period_is_cancelled(
    broker: Broker,
) -> None:
    [delivery] = new_ids(1)
    await broker.queue.enqueue([(delivery, 0)])
    started = asyncio.Event()
    cancelled: list[bool] = []

    async def stuck(task_delivery: str | list[str], slot_reserved: bool) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    consumer = broker.lane_consumer(
        broker.keys.first_attempt_lane, stuck, max_tasks=10, poll_delay_s=0.01, task_timeout_s=60
    )
    consumer.start()
    await asyncio.wait_for(started.wait(), 5)
    began = time.monotonic()
    await consumer.stop(grace_s=0.2)
    assert time.monotonic() - began < 2
    assert cancelled == [True]
