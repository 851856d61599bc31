"""The deliverer and the recorder with in-memory fakes: what is sent, put off, given back and
recorded, and how; no server involved."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from structlog.testing import capture_logs

from hookrelay.delivery.record import Recorder
from hookrelay.delivery.send import Response, Sent, TransportFailure
from hookrelay.metrics import DeliveryMetrics
from hookrelay.models import AttemptOutcome, ClaimedDelivery, Event, HealthPolicy, RecordedAttempt
from hookrelay.settings import Settings
from hookrelay.statuses import DeliveryStatus, ErrorKind
from hookrelay.worker.deliverer import (
    CONCURRENCY_RETRY_S,
    UNSENT_RETRY_S,
    Deferred,
    Deliverer,
)
from tests.unit.claims import claimed

SETTINGS = Settings(retry_schedule_s=(5.0, 60.0), delivery_timeout_s=15.0)


def claim(n: int, **changes: Any) -> ClaimedDelivery:
    return claimed(id=f"dlv_{n}", event_id=f"evt_{n}", **changes)


@dataclass
class FakeDeliveries:
    claims: list[ClaimedDelivery]
    lost_leases: set[str] = field(default_factory=set)
    released: list[tuple[str, int, float]] = field(default_factory=list)
    success_batches: list[list[AttemptOutcome]] = field(default_factory=list)
    recorded: list[AttemptOutcome] = field(default_factory=list)

    async def claim(self, ids: list[str], lease_s: float) -> list[ClaimedDelivery]:
        return [c for c in self.claims if c.id in ids]

    async def release(self, delivery_id: str, attempt: int, delay_s: float) -> bool:
        self.released.append((delivery_id, attempt, delay_s))
        return True

    async def record_successes(self, outcomes: list[AttemptOutcome]) -> set[str]:
        self.success_batches.append(outcomes)
        return {o.delivery_id for o in outcomes} - self.lost_leases

    async def record_attempt(
        self,
        outcome: AttemptOutcome,
        policy: HealthPolicy,
        follow_up: Callable[[RecordedAttempt], list[Event]],
    ) -> tuple[RecordedAttempt | None, list[str]]:
        self.recorded.append(outcome)
        recorded = RecordedAttempt(outcome.next_status, None)
        events = follow_up(recorded) if follow_up else []
        # One delivery per operational event, as if one endpoint subscribed to them.
        return recorded, [f"dlv_of_{event.type}" for event in events]


@dataclass
class FakeQueue:
    enqueued: list[tuple[list[tuple[str, int]], datetime | None]] = field(default_factory=list)
    first_attempts: list[list[str]] = field(default_factory=list)

    async def enqueue(self, items: list[tuple[str, int]], defer_until: datetime | None) -> None:
        self.enqueued.append((items, defer_until))

    async def enqueue_first_attempts(self, due: list[str]) -> None:
        self.first_attempts.append(due)


@dataclass
class FakeLimits:
    room: bool = True
    rate_wait_s: float = 0.0
    started: int = 0
    finished: int = 0
    reserved: int = 0
    waits: list[tuple[float, float | None]] = field(default_factory=list)

    async def start(self, endpoint_id: str, wait_s: float, at_most_s: float | None = None) -> bool:
        self.started += 1
        self.waits.append((wait_s, at_most_s))
        return self.room

    def finish(self, endpoint_id: str) -> None:
        self.finished += 1

    async def reserve_rate_slot(self, endpoint_id: str, per_second: int) -> float:
        self.reserved += 1
        return self.rate_wait_s


@dataclass
class FakeSender:
    """Answers each delivery with the status set for it (200 by default), or raises."""

    statuses: dict[str, int] = field(default_factory=dict)
    raises: dict[str, Exception] = field(default_factory=dict)
    timeouts: list[float] = field(default_factory=list)

    async def send(self, claim: ClaimedDelivery, timeout_s: float) -> Sent:
        self.timeouts.append(timeout_s)
        if claim.id in self.raises:
            raise self.raises[claim.id]
        status = self.statuses.get(claim.id, 200)
        return Sent(datetime.now(UTC), 12, Response(status, {}, "ok"))


@dataclass
class FakeNotifier:
    apps: list[str] = field(default_factory=list)

    def committed(self, app_id: str) -> None:
        self.apps.append(app_id)


@dataclass
class Rig:
    store: FakeDeliveries
    queue: FakeQueue = field(default_factory=FakeQueue)
    limits: FakeLimits = field(default_factory=FakeLimits)
    sender: FakeSender = field(default_factory=FakeSender)
    notifier: FakeNotifier = field(default_factory=FakeNotifier)
    metrics: DeliveryMetrics = field(default_factory=DeliveryMetrics)
    settings: Settings = SETTINGS

    def deliverer(self) -> Deliverer:
        health = HealthPolicy(SETTINGS.disable_after_failing_s, SETTINGS.disable_after_dead)
        recorder = Recorder(
            self.store,  # type: ignore[arg-type]
            self.queue,  # type: ignore[arg-type]
            self.notifier,  # type: ignore[arg-type]
            self.metrics,
            health,
        )
        return Deliverer(
            self.settings,
            self.store,  # type: ignore[arg-type]
            self.queue,  # type: ignore[arg-type]
            self.sender,  # type: ignore[arg-type]
            recorder,
            self.limits,  # type: ignore[arg-type]
            self.metrics,
            random.Random(1),
        )


def ids(claims: list[ClaimedDelivery]) -> list[str]:
    return [c.id for c in claims]


async def test_first_attempts_that_succeeded_are_recorded_together_in_one_statement() -> None:
    rig = Rig(FakeDeliveries([claim(1), claim(2), claim(3)]))
    deferred = await rig.deliverer().deliver(ids(rig.store.claims))
    assert deferred == []
    assert [[o.delivery_id for o in batch] for batch in rig.store.success_batches] == [
        ["dlv_1", "dlv_2", "dlv_3"]
    ]
    assert rig.store.recorded == []
    assert rig.queue.enqueued == []


async def test_a_failed_attempt_is_recorded_in_full_and_its_retry_enqueued() -> None:
    rig = Rig(FakeDeliveries([claim(1), claim(2)]))
    rig.sender.statuses["dlv_2"] = 500
    await rig.deliverer().deliver(["dlv_1", "dlv_2"])
    [outcome] = rig.store.recorded
    assert (outcome.delivery_id, outcome.next_status) == ("dlv_2", DeliveryStatus.RETRYING)
    assert outcome.error_kind == ErrorKind.HTTP_STATUS
    assert rig.queue.enqueued == [([("dlv_2", 1)], outcome.next_attempt_at)]
    assert [[o.delivery_id for o in b] for b in rig.store.success_batches] == [["dlv_1"]]


async def test_a_later_attempt_that_succeeded_is_recorded_in_full_and_reports_a_recovery() -> None:
    rig = Rig(FakeDeliveries([claim(1, attempt_count=2)]))
    await rig.deliverer().deliver(["dlv_1"])
    assert [o.next_status for o in rig.store.recorded] == [DeliveryStatus.SUCCEEDED]
    assert rig.store.success_batches == []
    assert rig.notifier.apps == ["app_1"]  # delivery.recovered joined the app's log


async def test_a_dead_letter_reports_an_operational_event_and_is_not_retried() -> None:
    rig = Rig(FakeDeliveries([claim(1, attempt_count=3)]))
    rig.sender.statuses["dlv_1"] = 500
    with capture_logs() as logs:
        await rig.deliverer().deliver(["dlv_1"])
    assert [o.next_status for o in rig.store.recorded] == [DeliveryStatus.DEAD]
    assert rig.queue.enqueued == []
    assert rig.notifier.apps == ["app_1"]
    assert rig.queue.first_attempts == [["dlv_of_delivery.dead"]]
    assert [(line["log_level"], line["event"]) for line in logs] == [
        ("warning", "delivery dead-lettered")
    ]


async def test_a_busy_endpoint_puts_the_delivery_off_with_its_claim_given_back() -> None:
    rig = Rig(FakeDeliveries([claim(1, attempt_count=2)]))
    rig.limits.room = False
    [deferred] = await rig.deliverer().deliver(["dlv_1"])
    assert isinstance(deferred, Deferred)
    assert (deferred.delivery_id, deferred.attempts_made, deferred.slot_reserved) == (
        "dlv_1",
        1,
        False,
    )
    assert 0.5 * CONCURRENCY_RETRY_S <= deferred.delay_s <= 1.5 * CONCURRENCY_RETRY_S
    assert rig.store.released == [("dlv_1", 2, deferred.delay_s)]
    assert rig.sender.timeouts == []
    assert rig.limits.finished == 0  # no slot was taken
    assert rig.store.recorded == rig.store.success_batches == []


@pytest.mark.parametrize(("timeout_s", "at_most_s"), [(15.0, 5.0), (1.0, 3.0)])
async def test_a_delivery_waits_for_its_endpoints_slot_no_longer_than_its_lease_leaves_room_for(
    timeout_s: float, at_most_s: float
) -> None:
    """A lease is the timeout and a margin (22.5 s for 15 s, 6 s for 1 s): a delivery waits 5 s
    at most, and less when the request would then have less than its whole timeout and the
    time to record it (2 s) left in the lease."""
    rig = Rig(FakeDeliveries([claim(1)]), settings=Settings(delivery_timeout_s=timeout_s))
    await rig.deliverer().deliver(["dlv_1"])
    assert rig.limits.waits == [(0.25, at_most_s)]


async def test_a_rate_limited_endpoint_puts_the_delivery_off_to_its_reserved_slot() -> None:
    rig = Rig(FakeDeliveries([claim(1, rate_limit_per_s=2)]))
    rig.limits.rate_wait_s = 0.3
    assert await rig.deliverer().deliver(["dlv_1"]) == [Deferred("dlv_1", 0.3, 0, True)]
    assert rig.store.released == [("dlv_1", 1, 0.3)]
    assert rig.sender.timeouts == []
    assert rig.limits.finished == rig.limits.started == 1


async def test_a_delivery_whose_slot_is_reserved_does_not_take_another() -> None:
    rig = Rig(FakeDeliveries([claim(1, rate_limit_per_s=2)]))
    rig.limits.rate_wait_s = 0.3
    assert await rig.deliverer().deliver(["dlv_1"], slot_reserved=True) == []
    assert rig.limits.reserved == 0
    assert len(rig.sender.timeouts) == 1


async def test_a_delivery_that_could_not_be_sent_is_given_back_without_using_its_attempt() -> None:
    rig = Rig(FakeDeliveries([claim(1), claim(2, attempt_count=3)]))
    rig.sender.raises["dlv_2"] = ValueError("secret ciphertext does not verify")
    with capture_logs() as logs:
        deferred = await rig.deliverer().deliver(["dlv_1", "dlv_2"])
    assert deferred == [Deferred("dlv_2", UNSENT_RETRY_S, 2, False)]
    assert rig.store.released == [("dlv_2", 3, UNSENT_RETRY_S)]
    assert [[o.delivery_id for o in b] for b in rig.store.success_batches] == [["dlv_1"]]
    assert any(line["event"] == "delivery not sent" for line in logs)


async def test_a_held_delivery_is_neither_sent_nor_recorded() -> None:
    rig = Rig(FakeDeliveries([claim(1, status="held")]))
    assert await rig.deliverer().deliver(["dlv_1"]) == []
    assert rig.sender.timeouts == []
    assert rig.store.recorded == rig.store.success_batches == rig.store.released == []


async def test_a_redelivery_is_counted_and_told() -> None:
    rig = Rig(FakeDeliveries([claim(1, previous_status="sending")]))
    with capture_logs() as logs:
        await rig.deliverer().deliver(["dlv_1"])
    counts, _ = rig.metrics.take()
    assert counts["hookrelay_redeliveries_total"] == 1
    assert any("lease expired" in line["event"] for line in logs)


async def test_the_request_gets_the_delivery_timeout_when_the_lease_allows_it() -> None:
    rig = Rig(FakeDeliveries([claim(1)]))
    await rig.deliverer().deliver(["dlv_1"])
    assert rig.sender.timeouts == [SETTINGS.delivery_timeout_s]


async def test_a_success_whose_lease_was_lost_is_told_and_not_counted() -> None:
    rig = Rig(FakeDeliveries([claim(1), claim(2)], lost_leases={"dlv_2"}))
    with capture_logs() as logs:
        await rig.deliverer().deliver(["dlv_1", "dlv_2"])
    lost = [line for line in logs if line["event"] == "lease lost before the attempt was recorded"]
    assert [line["delivery_id"] for line in lost] == ["dlv_2"]
    counts, _ = rig.metrics.take()
    assert counts["hookrelay_attempt_duration_seconds_count"] == 1


def test_deferred_is_a_value_never_raised() -> None:
    assert not issubclass(Deferred, BaseException)


@pytest.mark.parametrize("kind", [ErrorKind.TIMEOUT, ErrorKind.CONNECT])
async def test_a_transport_failure_is_recorded_with_its_kind(kind: ErrorKind) -> None:
    rig = Rig(FakeDeliveries([claim(1)]))

    async def fail(claim: ClaimedDelivery, timeout_s: float) -> Sent:
        return Sent(datetime.now(UTC), 5, TransportFailure(kind, "no"))

    rig.sender.send = fail  # type: ignore[method-assign]
    await rig.deliverer().deliver(["dlv_1"])
    [outcome] = rig.store.recorded
    assert (outcome.error_kind, outcome.status_code) == (kind, None)
