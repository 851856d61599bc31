"""The worker's in-process limits: a batch semaphore that never loses units, endpoint slots."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import uvloop

from hookrelay.storage.maintenance import SWEEP_START, Sweep
from hookrelay.worker.limits import EndpointLimits, Slots, SlotsBusy
from hookrelay.worker.sweeper import Sweeper


async def test_slots_are_given_back_when_a_holder_is_cancelled() -> None:
    slots = Slots(2)

    async def hold() -> None:
        async with slots.take(2, timeout_s=1):
            await asyncio.sleep(10)

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(slots.take(1, timeout_s=5).__aenter__())
    await asyncio.sleep(0)
    holder.cancel()
    waiter.cancel()
    await asyncio.gather(holder, waiter, return_exceptions=True)
    async with slots.take(2, timeout_s=0.1):
        pass  # both units are free again


async def test_a_waiting_batch_is_served_before_later_small_takers() -> None:
    slots = Slots(3)
    order: list[str] = []
    release = asyncio.Event()

    async def take(name: str, units: int) -> None:
        async with slots.take(units, timeout_s=5):
            order.append(name)
            await release.wait()

    first = asyncio.create_task(take("first", 2))
    await asyncio.sleep(0)
    big = asyncio.create_task(take("big", 3))
    await asyncio.sleep(0)
    small = asyncio.create_task(take("small", 1))  # fits now, but the big batch waits first
    await asyncio.sleep(0.01)
    assert order == ["first"]
    release.set()
    await asyncio.gather(first, big, small)
    assert order == ["first", "big", "small"]


async def test_no_room_in_time_raises_slots_busy() -> None:
    slots = Slots(1)
    async with slots.take(1, timeout_s=1):
        with pytest.raises(SlotsBusy):
            async with slots.take(1, timeout_s=0.01):
                pass
    async with slots.take(1, timeout_s=0.01):
        pass


class FakeRateSlots:
    """Never called: these tests are about the slots within one process."""

    async def reserve(self, endpoint_id: str, per_second: int) -> float:
        raise AssertionError("no rate limit in these tests")


async def test_endpoint_slots_forget_a_cancelled_waiter() -> None:
    limits = EndpointLimits(FakeRateSlots(), concurrency=1)  # type: ignore[arg-type]
    assert await limits.start("ep_1", wait_s=1)
    waiting = asyncio.create_task(limits.start("ep_1", wait_s=5))
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    limits.finish("ep_1")
    assert limits._slots == {}  # nothing left behind for an idle endpoint


async def test_endpoint_slots_go_to_waiters_in_order_and_late_ones_give_up() -> None:
    limits = EndpointLimits(FakeRateSlots(), concurrency=2)  # type: ignore[arg-type]
    assert await limits.start("ep_1", wait_s=1)
    assert await limits.start("ep_1", wait_s=1)
    first = asyncio.create_task(limits.start("ep_1", wait_s=5))
    second = asyncio.create_task(limits.start("ep_1", wait_s=5))
    late = asyncio.create_task(limits.start("ep_1", wait_s=0.05))
    await asyncio.sleep(0.01)
    limits.finish("ep_1")  # the slot goes to the first waiter, not the last
    assert await first
    assert not second.done()
    assert await late is False  # its deadline passed with no slot free
    limits.finish("ep_1")
    assert await second
    assert not await limits.start("ep_1", wait_s=0.01)  # both slots held
    limits.finish("ep_1")
    limits.finish("ep_1")
    assert limits._slots == {}


async def test_a_backlog_waits_its_turn_while_the_endpoint_keeps_freeing_slots() -> None:
    """Each delivery takes 50 ms and the last in line waits 350 ms, more than the 200 ms after
    which a waiter asks whether to give up: slots came free all along, at a pace that serves
    it in time, so none gives up."""
    limits = EndpointLimits(FakeRateSlots(), concurrency=1)  # type: ignore[arg-type]

    async def deliver() -> bool:
        if not await limits.start("ep_1", wait_s=0.2, at_most_s=2):
            return False
        await asyncio.sleep(0.05)
        limits.finish("ep_1")
        return True

    assert await asyncio.gather(*(deliver() for _ in range(8))) == [True] * 8
    assert limits._slots == {}


async def test_a_waiter_gives_up_on_a_stall_or_when_its_turn_would_come_too_late() -> None:
    limits = EndpointLimits(FakeRateSlots(), concurrency=1)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    assert await limits.start("ep_1", wait_s=1)  # held throughout: nothing comes free
    started = loop.time()
    assert not await limits.start("ep_1", wait_s=0.05, at_most_s=5)
    assert 0.04 <= loop.time() - started < 1  # the stall, not the last moment
    limits.finish("ep_1")

    # Twenty ahead in line, each holding its slot 50 ms: slots come free all along, but at
    # that pace its turn comes after about a second, past its last moment (0.5 s): it gives up
    # at its first look (0.2 s), not at its last moment.
    async def ahead() -> None:
        assert await limits.start("ep_1", wait_s=5)
        await asyncio.sleep(0.05)
        limits.finish("ep_1")

    queue = [asyncio.create_task(ahead()) for _ in range(20)]
    await asyncio.sleep(0)
    started = loop.time()
    assert not await limits.start("ep_1", wait_s=0.2, at_most_s=0.5)
    assert 0.19 <= loop.time() - started < 0.45
    await asyncio.gather(*queue)
    assert limits._slots == {}


async def test_a_stopping_process_sends_nothing_more_that_waits_for_a_slot() -> None:
    limits = EndpointLimits(FakeRateSlots(), concurrency=1)  # type: ignore[arg-type]
    assert await limits.start("ep_1", wait_s=1)
    waiting = asyncio.create_task(limits.start("ep_1", wait_s=5, at_most_s=5))
    await asyncio.sleep(0)
    limits.stop_waiting()
    assert await asyncio.wait_for(waiting, 0.1) is False  # put off at once, not sent
    assert await asyncio.wait_for(limits.start("ep_1", wait_s=5), 0.1) is False
    limits.finish("ep_1")
    assert await limits.start("ep_1", wait_s=5)  # a free slot is still taken
    limits.finish("ep_1")
    assert limits._slots == {}


async def test_a_slot_granted_to_a_waiter_cancelled_meanwhile_goes_to_the_next() -> None:
    limits = EndpointLimits(FakeRateSlots(), concurrency=1)  # type: ignore[arg-type]
    assert await limits.start("ep_1", wait_s=1)
    cancelled = asyncio.create_task(limits.start("ep_1", wait_s=5))
    nxt = asyncio.create_task(limits.start("ep_1", wait_s=5))
    await asyncio.sleep(0)
    limits.finish("ep_1")  # granted to `cancelled`, which has not run yet
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    assert await nxt  # the slot was passed on, not lost
    limits.finish("ep_1")
    assert limits._slots == {}


class FakeMaintenance:
    def __init__(self, sweep: Sweep) -> None:
        self.result = sweep

    async def sweep(self, *_: Any) -> Sweep:
        return self.result


class FakeQueue:
    def __init__(self, waiting: int) -> None:
        self.waiting = waiting
        self.enqueued: list[tuple[str, int]] = []

    async def due_waiting(self) -> int:
        return self.waiting

    async def enqueue(self, work: list[tuple[str, int]]) -> int:
        self.enqueued += work
        return len(work)


async def test_sweeper_leaves_a_queued_backlog_alone_but_not_stale_deliveries() -> None:
    now = datetime.now(UTC)
    sweep = Sweep(
        overdue=[
            ("dlv_recent", 0, now - timedelta(seconds=10)),
            ("dlv_stale", 1, now - timedelta(hours=1)),
        ],
        jobless=[("dlv_expired_lease", 2)],
        next_cursor=SWEEP_START,
    )
    busy = FakeQueue(waiting=500)
    sweeper = Sweeper(FakeMaintenance(sweep), busy, 2.0, 5.0, stale_after_s=60.0)  # type: ignore[arg-type]
    assert await sweeper.sweep_once() == 2
    assert busy.enqueued == [("dlv_expired_lease", 2), ("dlv_stale", 1)]

    drained = FakeQueue(waiting=0)
    sweeper = Sweeper(FakeMaintenance(sweep), drained, 2.0, 5.0, stale_after_s=60.0)  # type: ignore[arg-type]
    assert await sweeper.sweep_once() == 3


@pytest.mark.parametrize("loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop])
def test_endpoint_slots_survive_bursts_deadlines_and_cancellations(
    loop_factory: Callable[[], asyncio.AbstractEventLoop],
) -> None:
    """Hundreds of waiters with deadlines from under a millisecond (uvloop then hands out
    timer handles that cannot say when they fire) to 50 ms, some cancelled: never more than
    the concurrency at once, no error, and every slot back at the end."""
    rng = random.Random(7)
    holding = most = 0
    errors: list[BaseException] = []

    async def scenario() -> dict[str, Any]:
        limits = EndpointLimits(FakeRateSlots(), concurrency=3)  # type: ignore[arg-type]

        async def deliver() -> None:
            nonlocal holding, most
            try:
                if not await limits.start("ep_1", wait_s=rng.choice([0.0, 0.0004, 0.002, 0.05])):
                    return
            except Exception as exc:
                errors.append(exc)
                return
            holding += 1
            most = max(most, holding)
            try:
                await asyncio.sleep(rng.random() * 0.003)
            finally:  # as the worker gives a slot back, however its delivery ends
                holding -= 1
                limits.finish("ep_1")

        for _ in range(20):
            burst = [asyncio.create_task(deliver()) for _ in range(rng.randint(20, 80))]
            await asyncio.sleep(0.001)
            for task in rng.sample(burst, len(burst) // 5):
                task.cancel()
            await asyncio.gather(*burst, return_exceptions=True)
        return dict(limits._slots)

    loop = loop_factory()
    try:
        left = loop.run_until_complete(scenario())
    finally:
        loop.close()
    assert errors == []
    assert 0 < most <= 3
    assert left == {}  # every slot given back, the idle gate dropped
