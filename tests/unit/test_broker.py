"""The broker's decisions that need no Redis: names, task ids, coalesced enqueues, kept counts."""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest
from arq.worker import func

from hookrelay.broker import EnqueueCoalescer, Keys, answers_ping
from hookrelay.broker.consumer import Alarm, LaneWorker
from hookrelay.broker.keys import listener_name
from hookrelay.broker.tasks import batch_task_id, delivery_task_id, reserved_task_id
from hookrelay.metrics import DeliveryMetrics


def test_key_names_stay_as_deployed() -> None:
    """Renaming one would strand queued tasks and metric totals across an upgrade, and the
    channels are documented."""
    keys = Keys("hookrelay:deliveries")
    assert keys.first_attempt_lane == "hookrelay:deliveries"
    assert keys.retry_lane == "hookrelay:deliveries:retries"
    assert keys.log_channel == "hookrelay:deliveries:log"
    assert keys.revocation_channel == "hookrelay:deliveries:revoked"
    assert keys.metrics == "hookrelay:deliveries:metrics"
    assert keys.rate("ep_1") == "hookrelay:deliveries:rate:ep_1"
    assert listener_name(keys.log_channel) == "hookrelay-listener:hookrelay:deliveries:log"


def test_each_attempt_of_a_delivery_has_a_task_id_of_its_own() -> None:
    assert delivery_task_id("dlv_1", 0) == "dlv_1:0"
    assert delivery_task_id("dlv_1", 3) == "dlv_1:3"
    assert reserved_task_id("dlv_1", 3) == "dlv_1:3:slot"
    assert batch_task_id(["dlv_1", "dlv_2", "dlv_3"]) == "dlv_1:0:x3"


class GatedQueue:
    """Enqueues whatever it is given, each call held until the test lets it go."""

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls: list[list[str]] = []
        self.gate = asyncio.Event()
        self._fail_on_call = fail_on_call

    async def enqueue_first_attempts(self, delivery_ids: list[str]) -> int:
        self.calls.append(delivery_ids)
        await self.gate.wait()
        if len(self.calls) == self._fail_on_call:
            raise ConnectionError("redis went away")
        return len(delivery_ids)


async def test_requests_arriving_during_an_enqueue_share_the_next_one() -> None:
    queue = GatedQueue()
    coalescer = EnqueueCoalescer(queue)  # type: ignore[arg-type]
    first = asyncio.create_task(coalescer.enqueue(["dlv_a"]))
    for _ in range(5):  # the first enqueue sets off
        await asyncio.sleep(0)
    later = [asyncio.create_task(coalescer.enqueue([f"dlv_{n}"])) for n in ("b", "c")]
    for _ in range(5):
        await asyncio.sleep(0)
    assert queue.calls == [["dlv_a"]]  # the others wait for the enqueue on its way
    queue.gate.set()
    await asyncio.gather(first, *later)
    assert queue.calls == [["dlv_a"], ["dlv_b", "dlv_c"]]


async def test_a_failed_enqueue_fails_every_request_it_carried_and_no_other() -> None:
    queue = GatedQueue(fail_on_call=2)
    coalescer = EnqueueCoalescer(queue)  # type: ignore[arg-type]
    first = asyncio.create_task(coalescer.enqueue(["dlv_a"]))
    for _ in range(5):  # the first enqueue sets off
        await asyncio.sleep(0)
    later = [asyncio.create_task(coalescer.enqueue([f"dlv_{n}"])) for n in ("b", "c")]
    queue.gate.set()
    results = await asyncio.gather(first, *later, return_exceptions=True)
    assert results[0] is None
    assert [type(r) for r in results[1:]] == [ConnectionError, ConnectionError]
    await coalescer.enqueue(["dlv_d"])  # and the next one goes through
    assert queue.calls[-1] == ["dlv_d"]


class FlakyTotals:
    """Shared metric totals whose first add fails."""

    def __init__(self) -> None:
        self.tries = 0
        self.added: Counter[str] = Counter()

    async def add(self, counts: Mapping[str, int], sums: Mapping[str, float]) -> None:
        self.tries += 1
        if self.tries == 1:
            raise ConnectionError("redis went away")
        self.added.update(counts)


async def test_counts_that_could_not_be_added_go_with_the_next_flush() -> None:
    metrics = DeliveryMetrics()
    totals = FlakyTotals()
    metrics.attempt("succeeded", 0.01)
    with pytest.raises(ConnectionError):
        await metrics.flush(totals)  # type: ignore[arg-type]
    metrics.attempt("succeeded", 0.01)
    await metrics.flush(totals)  # type: ignore[arg-type]
    assert totals.added['hookrelay_deliveries_total{outcome="succeeded"}'] == 2


def test_a_port_with_nothing_listening_does_not_answer_ping() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        assert answers_ping(f"redis://127.0.0.1:{port}/0") is False


async def test_a_lane_takes_only_tasks_it_is_not_running_and_no_more_than_it_has_room_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Polls see running tasks again: this worker's are left out before Redis is asked; the
    rest go to Redis in one call that may take as many as there are free slots, and each task
    it took is started."""
    asked: list[tuple[list[str], int]] = []
    started: list[tuple[str, int]] = []

    async def take_tasks(self: LaneWorker, task_ids: list[str], at_most: int) -> Any:
        asked.append((task_ids, at_most))
        return [("new", 11), ("newer", 12)]  # "finished" runs elsewhere meanwhile, say

    async def run_job(self: LaneWorker, task_id: str, score: int) -> None:
        started.append((task_id, score))

    async def noop(ctx: dict[str, Any]) -> None:
        pass

    monkeypatch.setattr(LaneWorker, "take_tasks", take_tasks)
    monkeypatch.setattr(LaneWorker, "run_job", run_job)
    lane = LaneWorker(functions=[func(noop, name="noop")], handle_signals=False, max_jobs=3)
    running = asyncio.create_task(asyncio.sleep(10))
    finished = asyncio.create_task(asyncio.sleep(0))
    await finished
    lane.tasks = {"running": running, "finished": finished}
    lane.job_counter = 1
    await lane.start_jobs([b"running", b"finished", b"new", b"newer", b"newest"])
    await asyncio.gather(*(lane.tasks[i] for i in ("new", "newer")))
    running.cancel()
    # A finished task whose id came back (deferred and due again) may be taken again.
    assert asked == [(["finished", "new", "newer", "newest"], 2)]
    assert started == [("new", 11), ("newer", 12)]
    assert lane.job_counter == 1  # the two started have ended


@pytest.mark.timed
async def test_an_alarm_rings_at_the_earliest_time_it_was_given() -> None:
    alarm = Alarm()
    loop = asyncio.get_running_loop()
    now_ms = time.time() * 1000

    started = loop.time()
    alarm.ring_at(now_ms + 1_000)
    alarm.ring_at(now_ms + 100)  # earlier: replaces the first
    await alarm.wait(5)
    assert 0.09 <= loop.time() - started < 0.5

    started = loop.time()
    alarm.ring_at(time.time() * 1000 + 100)
    alarm.ring_at(time.time() * 1000 + 2_000)  # later: the earlier one stands
    await alarm.wait(5)
    assert loop.time() - started < 0.5


async def test_an_alarm_rung_before_the_wait_is_not_lost_and_a_wait_has_a_bound() -> None:
    alarm = Alarm()
    loop = asyncio.get_running_loop()
    alarm.ring()
    started = loop.time()
    await alarm.wait(5)
    assert loop.time() - started < 0.5
    alarm.ring_at(time.time() * 1000 - 10)  # already due: at once
    await alarm.wait(5)
    started = loop.time()
    await alarm.wait(0.05)  # nothing rang
    assert loop.time() - started >= 0.04
