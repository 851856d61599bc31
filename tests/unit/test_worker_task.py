"""The delivery task: what becomes of the deliveries the deliverer put off, and of a task that
found no room."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from hookrelay.broker import RetryTask
from hookrelay.worker.deliverer import Deferred
from hookrelay.worker.limits import SlotsBusy
from hookrelay.worker.task import SLOTS_BUSY_RETRY_S, deliver


@dataclass
class FakeQueue:
    reserved: list[tuple[str, int, float]] = field(default_factory=list)
    enqueued: list[tuple[list[tuple[str, int]], datetime | None]] = field(default_factory=list)

    async def enqueue_reserved(self, delivery_id: str, attempts_made: int, delay_s: float) -> None:
        self.reserved.append((delivery_id, attempts_made, delay_s))

    async def enqueue(self, items: list[tuple[str, int]], defer_until: datetime | None) -> None:
        self.enqueued.append((items, defer_until))


@dataclass
class FakeDeliverer:
    deferred: list[Deferred] = field(default_factory=list)
    busy: bool = False
    queue: FakeQueue = field(default_factory=FakeQueue)
    calls: list[tuple[list[str], bool]] = field(default_factory=list)

    async def deliver(self, ids: list[str], slot_reserved: bool = False) -> list[Deferred]:
        self.calls.append((ids, slot_reserved))
        if self.busy:
            raise SlotsBusy()
        return self.deferred


async def test_a_task_carries_one_id_or_a_batch() -> None:
    deliverer = FakeDeliverer()
    await deliver(deliverer, "dlv_1")
    await deliver(deliverer, ["dlv_2", "dlv_3"], slot_reserved=True)
    assert deliverer.calls == [(["dlv_1"], False), (["dlv_2", "dlv_3"], True)]


async def test_a_single_delivery_put_off_is_retried_after_its_delay() -> None:
    deliverer = FakeDeliverer([Deferred("dlv_1", 0.4, 0, False)])
    with pytest.raises(RetryTask) as retry:
        await deliver(deliverer, "dlv_1")
    assert retry.value.after_s == 0.4


async def test_a_delivery_put_off_to_a_reserved_slot_gets_a_task_of_its_own() -> None:
    deliverer = FakeDeliverer([Deferred("dlv_1", 0.3, 2, True)])
    await deliver(deliverer, "dlv_1")
    assert deliverer.queue.reserved == [("dlv_1", 2, 0.3)]


async def test_a_task_whose_slot_was_reserved_is_retried_when_put_off_again() -> None:
    deliverer = FakeDeliverer([Deferred("dlv_1", 0.2, 0, True)])
    with pytest.raises(RetryTask):
        await deliver(deliverer, "dlv_1", slot_reserved=True)
    assert deliverer.queue.reserved == []


async def test_a_delivery_put_off_from_a_batch_goes_alone_and_the_rest_is_done() -> None:
    deliverer = FakeDeliverer([Deferred("dlv_2", 1.0, 0, False)])
    before = datetime.now(UTC)
    await deliver(deliverer, ["dlv_1", "dlv_2"])
    [(items, later)] = deliverer.queue.enqueued
    assert items == [("dlv_2", 0)]
    assert later is not None
    assert 0.9 <= (later - before).total_seconds() <= 2.0


async def test_a_task_that_found_no_room_is_retried_whole() -> None:
    with pytest.raises(RetryTask) as retry:
        await deliver(FakeDeliverer(busy=True), ["dlv_1", "dlv_2"])
    assert retry.value.after_s == SLOTS_BUSY_RETRY_S
