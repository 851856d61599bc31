"""The broker on a real Redis: lanes, task batches, due times, notices, rate slots, totals."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from redis.asyncio import Redis

from hookrelay.broker import Broker
from hookrelay.broker.keys import TASK_KEY_PREFIX
from hookrelay.errors import DependencyUnavailable
from tests.integration.api_calls import wait_until


def new_ids(count: int) -> list[str]:
    return [f"dlv_{uuid.uuid4().hex}" for _ in range(count)]


async def lane_scores(redis_client: Redis, lane: str) -> dict[str, float]:
    return {
        task_id.decode(): score
        for task_id, score in await redis_client.zrange(lane, 0, -1, withscores=True)
    }


async def test_new_deliveries_go_out_in_tasks_of_at_most_a_hundred(
    broker: Broker, redis_client: Redis
) -> None:
    ids = new_ids(250)
    assert await broker.queue.enqueue_first_attempts(ids) == 3
    tasks = await lane_scores(redis_client, broker.keys.first_attempt_lane)
    assert set(tasks) == {f"{ids[0]}:0:x100", f"{ids[100]}:0:x100", f"{ids[200]}:0:x50"}
    payload = orjson.loads(await redis_client.get(f"{TASK_KEY_PREFIX}{ids[200]}:0:x50"))
    assert payload["a"] == [ids[200:]]


async def test_each_delivery_goes_to_the_lane_of_its_attempt(
    broker: Broker, redis_client: Redis
) -> None:
    first, retry = new_ids(2)
    assert await broker.queue.enqueue([(first, 0), (retry, 3)]) == 2
    assert set(await lane_scores(redis_client, broker.keys.first_attempt_lane)) == {f"{first}:0"}
    assert set(await lane_scores(redis_client, broker.keys.retry_lane)) == {f"{retry}:3"}
    assert await broker.queue.enqueue([(first, 0), (retry, 3)]) == 0  # already there


async def test_deferred_and_reserved_tasks_are_due_when_asked(
    broker: Broker, redis_client: Redis
) -> None:
    later, reserved = new_ids(2)
    due_at = datetime.now(UTC) + timedelta(seconds=30)
    await broker.queue.enqueue([(later, 1)], due_at)
    await broker.queue.enqueue_reserved(reserved, 2, delay_s=5.0)
    now_ms = time.time() * 1000
    tasks = await lane_scores(redis_client, broker.keys.retry_lane)
    assert tasks[f"{later}:1"] == pytest.approx(due_at.timestamp() * 1000, abs=1)
    assert tasks[f"{reserved}:2:slot"] == pytest.approx(now_ms + 5000, abs=1000)
    assert await broker.queue.due_waiting() == 0


async def test_log_notices_and_revocations_reach_their_followers(broker: Broker) -> None:
    heard: list[tuple[str, str]] = []
    subscribed: list[str] = []
    followers = [
        asyncio.create_task(
            broker.notices.follow_log(
                lambda app: heard.append(("log", app)), lambda: subscribed.append("log")
            )
        ),
        asyncio.create_task(
            broker.notices.follow_revocations(
                lambda app: heard.append(("revoked", app)), lambda: subscribed.append("revoked")
            )
        ),
    ]
    try:

        async def both_subscribed() -> bool:
            return sorted(subscribed) == ["log", "revoked"]

        await wait_until(both_subscribed, "both subscribed", 5)
        notifier = broker.notices.commit_notifier()
        for app in ("app_1", "app_2", "app_1"):
            notifier.committed(app)
        await notifier.close()
        await broker.notices.announce_revocation("app_3")

        async def all_heard() -> bool:
            return len(heard) >= 3

        await wait_until(all_heard, "every notice heard", 5)
    finally:
        for follower in followers:
            follower.cancel()
        await asyncio.gather(*followers, return_exceptions=True)
    # Apps noted while a publish was on its way went once each.
    assert sorted(heard) == [("log", "app_1"), ("log", "app_2"), ("revoked", "app_3")]


async def test_rate_slots_are_spaced_by_the_rate(broker: Broker) -> None:
    [endpoint] = new_ids(1)
    waits = [await broker.rate_slots.reserve(endpoint, per_second=10) for _ in range(3)]
    assert waits[0] == 0
    assert waits[1] == pytest.approx(0.1, abs=0.03)
    assert waits[2] == pytest.approx(0.2, abs=0.03)


async def test_metric_totals_add_up_across_flushes(broker: Broker) -> None:
    await broker.metrics.add({"a_total": 2}, {"b_sum": 0.25})
    await broker.metrics.add({"a_total": 3}, {"b_sum": 0.5})
    assert await broker.metrics.read() == {"a_total": 5.0, "b_sum": 0.75}


async def test_an_unreachable_redis_is_reported_as_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        broker = Broker(f"redis://127.0.0.1:{sock.getsockname()[1]}/0", "hookrelay:test")
        try:
            with pytest.raises(DependencyUnavailable):
                await broker.ping()
            with pytest.raises(DependencyUnavailable):
                await broker.metrics.read()
        finally:
            await broker.close()
