"""The broker's decisions that need no Redis: names, task ids, coalesced enqueues, kept counts."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest
from arq import Worker
from arq.worker import func

from hookrelay.broker import EnqueueCoalescer, Keys, answers_ping
from hookrelay.broker.consumer import LaneWorker
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


async def test_a_lane_skips_the_tasks_it_is_already_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Polls see running tasks again (this worker's, and others'); checking them in Redis would
    cost arq three or four round trips each."""
    checked: list[list[bytes]] = []

    async def start_jobs(self: Worker, job_ids: list[bytes]) -> None:
        checked.append(job_ids)

    async def noop(ctx: dict[str, Any]) -> None:
        pass

    class RunningElsewhere:
        """Redis, as far as the lane asks it: arq's in-progress key of the task "elsewhere"."""

        async def mget(self, keys: list[str]) -> list[bytes | None]:
            return [b"1" if key.endswith(":elsewhere") else None for key in keys]

    monkeypatch.setattr(Worker, "start_jobs", start_jobs)
    lane = LaneWorker(functions=[func(noop, name="noop")], handle_signals=False, max_jobs=3)
    lane._pool = RunningElsewhere()  # type: ignore[assignment]
    running = asyncio.create_task(asyncio.sleep(10))
    finished = asyncio.create_task(asyncio.sleep(0))
    await finished
    lane.tasks = {"running": running, "finished": finished}
    await lane.start_jobs([b"running", b"elsewhere", b"finished", b"new", b"newer", b"newest"])
    running.cancel()
    # A finished task whose id came back (deferred and due again) is arq's to check; another
    # worker's running task is not; and no more go on than there are free slots.
    assert checked == [[b"finished", b"new", b"newer"]]
