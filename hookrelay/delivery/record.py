"""Record attempts: first attempts that succeeded together in one statement; any other with the
endpoint's health and the operational events it calls for, in one transaction; then schedule
the retry."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from hookrelay.broker import CommitNotifier, DeliveryQueue
from hookrelay.delivery.log import bound_log, log_attempt
from hookrelay.errors import DependencyUnavailable
from hookrelay.metrics import DeliveryMetrics
from hookrelay.models import AttemptOutcome, ClaimedDelivery, Event, HealthPolicy, RecordedAttempt
from hookrelay.operational import events_after_attempt
from hookrelay.statuses import DeliveryStatus

T = TypeVar("T")

# Recording an outcome is tried this many times.
RECORD_TRIES = 3

Attempted = tuple[ClaimedDelivery, AttemptOutcome]


class AttemptRecords(Protocol):
    """Where attempts are written (hookrelay.storage.deliveries.Deliveries)."""

    async def record_successes(self, outcomes: list[AttemptOutcome]) -> set[str]: ...

    async def record_attempt(
        self,
        outcome: AttemptOutcome,
        policy: HealthPolicy,
        follow_up: Callable[[RecordedAttempt], list[Event]],
    ) -> tuple[RecordedAttempt | None, list[str]]: ...


# Compared for every delivery, so read once: on Python 3.11 each read of an enum member is a
# descriptor call (about 0.15 µs).
_SUCCEEDED, _RETRYING = DeliveryStatus.SUCCEEDED, DeliveryStatus.RETRYING


async def with_db_retries(record: Callable[[], Awaitable[T]]) -> T:
    """Record an outcome, trying again on a passing database failure: receivers have answered,
    and an unrecorded answer means sending again once the lease runs out."""
    for attempt in range(RECORD_TRIES - 1):
        try:
            return await record()
        except DependencyUnavailable:  # unreachable, or a deadlock lost (Contention)
            await asyncio.sleep(0.2 * (attempt + 1))
    return await record()


def is_quiet(claim: ClaimedDelivery, outcome: AttemptOutcome) -> bool:
    """A first attempt that succeeded (most of them): no event, health change or retry follows,
    so it is recorded with others in one statement."""
    return outcome.next_status == _SUCCEEDED and claim.attempt_count == 1


class Recorder:
    """Writes attempts and what follows from them; shared by a worker process's tasks."""

    def __init__(
        self,
        deliveries: AttemptRecords,
        queue: DeliveryQueue,
        notifier: CommitNotifier,
        metrics: DeliveryMetrics,
        health: HealthPolicy,
    ) -> None:
        self.deliveries = deliveries
        self.queue = queue
        self.notifier = notifier  # tells an app's live readers that its log grew
        self.metrics = metrics
        self.health = health

    async def record(self, attempted: list[Attempted]) -> None:
        """Record these attempts: the quiet ones in one statement, the others one by one."""
        quiet: list[Attempted] = []
        others: list[Attempted] = []
        for claim, outcome in attempted:
            (quiet if is_quiet(claim, outcome) else others).append((claim, outcome))
        # Shielded: once receivers have answered, cancelling the task must not lose records.
        await asyncio.shield(
            asyncio.gather(self._record_quiet(quiet), *(self._record_one(c, o) for c, o in others))
        )

    async def _record_quiet(self, attempted: list[Attempted]) -> None:
        if not attempted:
            return
        recorded = await with_db_retries(
            lambda: self.deliveries.record_successes([outcome for _, outcome in attempted])
        )
        for claim, outcome in attempted:
            if claim.id not in recorded:
                bound_log(claim).warning("lease lost before the attempt was recorded")
                continue
            self.metrics.attempt(_SUCCEEDED, outcome.duration_ms / 1000)
            log_attempt(claim, outcome, _SUCCEEDED)

    async def _record_one(self, claim: ClaimedDelivery, outcome: AttemptOutcome) -> None:
        """Record an attempt with the endpoint's health and the operational events it calls
        for, in one transaction; then schedule the retry and the events' deliveries."""
        now = datetime.now(UTC)
        bound = bound_log(claim)

        reported: list[Event] = []

        def follow_up(recorded: RecordedAttempt) -> list[Event]:
            reported[:] = events_after_attempt(
                claim, recorded, outcome.status_code, outcome.error_message, now
            )
            return reported

        recorded, due = await with_db_retries(
            lambda: self.deliveries.record_attempt(outcome, self.health, follow_up)
        )
        if recorded is None:
            bound.warning("lease lost before the attempt was recorded")
            return
        self.metrics.attempt(recorded.delivery_status, outcome.duration_ms / 1000)
        log_attempt(claim, outcome, recorded.delivery_status)
        if reported:
            self.notifier.committed(claim.app_id)
        if recorded.endpoint_disabled_reason is not None:
            bound.warning("endpoint disabled", reason=recorded.endpoint_disabled_reason)
        if recorded.delivery_status == _RETRYING:
            await self.queue.enqueue(
                [(claim.id, claim.attempt_count)], defer_until=outcome.next_attempt_at
            )
        if due:
            await self.queue.enqueue_first_attempts(due)
