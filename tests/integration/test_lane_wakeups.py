"""A lane's worker polls when it has reason to, against a real Redis: when tasks are enqueued
(a notice on the lane's channel), when a task not yet due comes due, when a task it ran asks to
go again later; otherwise rarely. Each test sets the poll delay and the idle poll to 30 s, so a
task that runs within a second was found for one of those reasons."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from hookrelay.broker import Broker, LaneConsumer, RetryTask
from hookrelay.broker import consumer as consumer_module
from hookrelay.broker.consumer import LaneWorker
from hookrelay.broker.keys import TASK_KEY_PREFIX, due_channel
from hookrelay.broker.tasks import deliver_payload, delivery_task_id
from tests.integration.test_arq_contract import new_ids

SLOW_S = 30.0


@pytest.fixture(autouse=True)
def slow_idle_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer_module, "IDLE_POLL_S", SLOW_S)


@pytest.fixture
def runs() -> list[tuple[float, str | list[str]]]:
    return []


@pytest.fixture
async def lane(
    broker: Broker, redis_client: Redis, runs: list[tuple[float, str | list[str]]]
) -> AsyncIterator[tuple[LaneConsumer, str]]:
    """A consumer of the first-attempt lane that notes when each task ran, listening; and the
    lane's name."""

    async def handler(delivery: str | list[str], slot_reserved: bool) -> None:
        runs.append((time.monotonic(), delivery))
        if len([1 for _, d in runs if d == delivery]) == 1 and str(delivery).endswith("retry"):
            raise RetryTask(0.3)

    name = broker.keys.first_attempt_lane
    consumer = broker.lane_consumer(
        name, handler, max_tasks=10, poll_delay_s=SLOW_S, task_timeout_s=10
    )
    consumer.start()
    try:
        # Listening: the lane's channel has its subscriber.
        for _ in range(200):
            [(_, subscribers)] = await redis_client.pubsub_numsub(due_channel(name))
            if subscribers:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # the poll its subscription rang for is over
        yield consumer, name
    finally:
        await consumer.stop(grace_s=1)


async def ran(runs: list[tuple[float, str | list[str]]], delivery: str, times: int = 1) -> float:
    """Wait (5 s at most) until `delivery` ran `times` times; when it last did."""
    for _ in range(500):
        at = [t for t, d in runs if d == delivery]
        if len(at) >= times:
            return at[-1]
        await asyncio.sleep(0.01)
    raise AssertionError(f"{delivery} ran {len(at)} times, not {times}")


async def test_a_task_runs_as_soon_as_it_is_enqueued(
    broker: Broker, lane: tuple[LaneConsumer, str], runs: list[tuple[float, str | list[str]]]
) -> None:
    [delivery] = new_ids(1)
    enqueued = time.monotonic()
    await broker.queue.enqueue([(delivery, 0)])
    assert await ran(runs, delivery) - enqueued < 1.0


async def test_a_batch_of_new_deliveries_runs_as_soon_as_it_is_enqueued(
    broker: Broker, lane: tuple[LaneConsumer, str], runs: list[tuple[float, str | list[str]]]
) -> None:
    batch = new_ids(3)
    enqueued = time.monotonic()
    await broker.queue.enqueue_first_attempts(batch)
    for _ in range(100):
        if any(d == batch for _, d in runs):
            break
        await asyncio.sleep(0.01)
    [at] = [t for t, d in runs if d == batch]
    assert at - enqueued < 1.0


async def test_a_task_enqueued_for_later_runs_when_it_comes_due(
    broker: Broker, lane: tuple[LaneConsumer, str], runs: list[tuple[float, str | list[str]]]
) -> None:
    [delivery] = new_ids(1)
    enqueued = time.monotonic()
    await broker.queue.enqueue([(delivery, 0)], datetime.now(UTC) + timedelta(seconds=0.4))
    waited = await ran(runs, delivery) - enqueued
    assert 0.35 <= waited < 1.5


async def test_a_task_that_asks_to_go_again_runs_when_it_comes_due(
    broker: Broker, lane: tuple[LaneConsumer, str], runs: list[tuple[float, str | list[str]]]
) -> None:
    [delivery] = new_ids(1)
    delivery += "retry"  # the handler asks for 0.3 s later on its first run
    await broker.queue.enqueue([(delivery, 0)])
    first = await ran(runs, delivery)
    again = await ran(runs, delivery, times=2)
    assert 0.3 <= again - first < 1.5


async def test_a_task_another_worker_puts_off_runs_here_when_it_comes_due(
    broker: Broker,
    lane: tuple[LaneConsumer, str],
    runs: list[tuple[float, str | list[str]]],
    redis_client: Redis,
) -> None:
    # Another worker's task asks to go again in 0.3 s (that worker may have no room then):
    # arq puts it back in the lane with its new time, and the lane's workers are told.
    _, name = lane
    other = broker.lane_consumer(
        name, lambda *_: None, max_tasks=1, poll_delay_s=1, task_timeout_s=10
    )
    [delivery] = new_ids(1)
    task_id = delivery_task_id(delivery, 0)
    asked = time.monotonic()
    await redis_client.psetex(
        TASK_KEY_PREFIX + task_id, 60_000, deliver_payload(delivery, round(time.time() * 1000))
    )
    await redis_client.zadd(name, {task_id: round(time.time() * 1000) + 300})
    await other._worker.retry_later(task_id, 0.3)
    try:
        waited = await ran(runs, delivery) - asked
    finally:
        await other.stop(grace_s=1)
    assert 0.25 <= waited < 1.5


async def test_a_task_with_a_reserved_slot_runs_when_its_slot_comes(
    broker: Broker, lane: tuple[LaneConsumer, str], runs: list[tuple[float, str | list[str]]]
) -> None:
    [delivery] = new_ids(1)
    enqueued = time.monotonic()
    await broker.queue.enqueue_reserved(delivery, 0, 0.4)
    waited = await ran(runs, delivery) - enqueued
    assert 0.35 <= waited < 1.5


async def test_a_task_waiting_for_room_starts_as_soon_as_a_running_one_ends(
    broker: Broker, redis_client: Redis
) -> None:
    first, second = new_ids(2)
    ended: list[float] = []
    started: dict[str | list[str], float] = {}

    async def handler(delivery: str | list[str], slot_reserved: bool) -> None:
        started[delivery] = time.monotonic()
        if delivery == first:
            await asyncio.sleep(0.3)
            ended.append(time.monotonic())

    consumer = broker.lane_consumer(
        broker.keys.first_attempt_lane, handler, max_tasks=1, poll_delay_s=SLOW_S, task_timeout_s=10
    )
    await broker.queue.enqueue([(first, 0)])
    consumer.start()
    try:
        for _ in range(100):
            if first in started:
                break
            await asyncio.sleep(0.01)
        await broker.queue.enqueue([(second, 0)])  # due, but the lane has no room
        for _ in range(300):
            if second in started:
                break
            await asyncio.sleep(0.01)
    finally:
        await consumer.stop(grace_s=1)
    assert 0 <= started[second] - ended[0] < 0.5


async def test_a_task_nobody_announced_runs_at_the_idle_poll(
    broker: Broker, redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a task whose notice was lost (Redis away), written here straight into the lane.
    monkeypatch.setattr(consumer_module, "IDLE_POLL_S", 0.5)
    [delivery] = new_ids(1)
    ran_at: list[float] = []

    async def handler(task_delivery: str | list[str], slot_reserved: bool) -> None:
        ran_at.append(time.monotonic())

    consumer = broker.lane_consumer(
        broker.keys.first_attempt_lane,
        handler,
        max_tasks=10,
        poll_delay_s=SLOW_S,
        task_timeout_s=10,
    )
    consumer.start()
    try:
        await asyncio.sleep(0.1)
        written = time.monotonic()
        payload = deliver_payload(delivery, round(time.time() * 1000))
        task_id = delivery_task_id(delivery, 0)
        await redis_client.psetex(TASK_KEY_PREFIX + task_id, 60_000, payload)
        await redis_client.zadd(broker.keys.first_attempt_lane, {task_id: time.time() * 1000})
        for _ in range(300):
            if ran_at:
                break
            await asyncio.sleep(0.01)
    finally:
        await consumer.stop(grace_s=1)
    assert ran_at and ran_at[0] - written < 1.5


async def test_an_idle_lane_does_not_poll(broker: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    # With arq's own loop, a poll delay of 10 ms meant 100 polls a second, with nothing to do.
    polls = 0
    poll = LaneWorker._poll_iteration

    async def counted(self: LaneWorker) -> None:
        nonlocal polls
        polls += 1
        await poll(self)

    async def handler(delivery: str | list[str], slot_reserved: bool) -> None:
        pass

    monkeypatch.setattr(LaneWorker, "_poll_iteration", counted)
    consumer = broker.lane_consumer(
        broker.keys.first_attempt_lane, handler, max_tasks=10, poll_delay_s=0.01, task_timeout_s=10
    )
    consumer.start()
    try:
        await asyncio.sleep(0.5)  # started, subscribed, polled for that
        before = polls
        await asyncio.sleep(1.0)
        assert polls == before
    finally:
        await consumer.stop(grace_s=1)
