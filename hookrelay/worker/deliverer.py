"""A queue task's deliveries through the pipeline: claim them with a lease, wait for room under the
process's and each endpoint's limits, then send → outcome → record."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from hookrelay.broker import DeliveryQueue
from hookrelay.delivery.log import bound_log
from hookrelay.delivery.outcome import attempt_outcome
from hookrelay.delivery.record import Attempted, Recorder
from hookrelay.delivery.send import Sender
from hookrelay.metrics import DeliveryMetrics
from hookrelay.models import ClaimedDelivery
from hookrelay.settings import Settings
from hookrelay.statuses import DeliveryStatus
from hookrelay.worker.limits import EndpointLimits, Slots

# A task waits this long for room among the deliveries in flight, then is put off whole.
SLOTS_WAIT_S = 5.0
# A claimed delivery that could not be sent (not an attempt) goes again after this.
UNSENT_RETRY_S = 1.0
# A delivery whose endpoint already has its share of this process's deliveries waits for one
# to finish as long as the endpoint finishes one every CONCURRENCY_WAIT_S (a fast endpoint
# does, whatever its backlog), up to CONCURRENCY_WAIT_MAX_S; then it is put off for about
# CONCURRENCY_RETRY_S. Put off, it costs a release, a task and a claim more: with a fixed wait
# of 0.25 s, 180 to 900 of a bulk replay of 100,000 to one endpoint were put off, and their
# releases (a statement each, at once) opened dozens more database connections.
CONCURRENCY_WAIT_S = 0.25
CONCURRENCY_WAIT_MAX_S = 5.0
CONCURRENCY_RETRY_S = 0.5
# The request must end while the lease holds, with this long left to record it.
RECORD_MARGIN_S = 2.0
# Compared for every delivery, so read once: on Python 3.11 each read of an enum member is a
# descriptor call (about 0.15 µs).
_HELD, _SENDING = DeliveryStatus.HELD, DeliveryStatus.SENDING


class Claims(Protocol):
    """Deliveries claimed under a lease, and given back (hookrelay.storage.deliveries)."""

    async def claim(self, delivery_ids: list[str], lease_s: float) -> list[ClaimedDelivery]: ...

    async def release(self, delivery_id: str, attempt: int, delay_s: float) -> bool: ...


@dataclass(frozen=True)
class Deferred:
    """A delivery that may not start yet, its claim given back: try again after `delay_s`.

    `slot_reserved`: a slot of the endpoint's rate limit is reserved for that moment, so the
    next try must not take another.
    """

    delivery_id: str
    delay_s: float
    attempts_made: int
    slot_reserved: bool


class Deliverer:
    """Runs deliveries; one instance per worker process, shared by its concurrent tasks."""

    def __init__(
        self,
        settings: Settings,
        deliveries: Claims,
        queue: DeliveryQueue,
        sender: Sender,
        recorder: Recorder,
        limits: EndpointLimits,
        metrics: DeliveryMetrics,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.deliveries = deliveries
        self.queue = queue
        self.sender = sender
        self.recorder = recorder
        self.limits = limits
        self.metrics = metrics
        self.rng = rng or random.Random()
        # Deliveries this process runs at once, across both lanes and batched tasks.
        self._running = Slots(settings.worker_concurrency + settings.retry_concurrency)
        # Never so long that the request, once the wait ends, would have less than its whole
        # timeout (and the time to record it) left in the lease.
        self._wait_at_most_s = max(
            CONCURRENCY_WAIT_S,
            min(
                CONCURRENCY_WAIT_MAX_S,
                settings.lease_s - settings.delivery_timeout_s - RECORD_MARGIN_S,
            ),
        )

    async def deliver(self, delivery_ids: list[str], slot_reserved: bool = False) -> list[Deferred]:
        """Make one attempt at each delivery that is due and that nobody else holds: one
        statement claims them all, their requests run concurrently, and the first attempts that
        succeeded (most of them) are recorded together in one statement.

        Returns the deliveries an endpoint limit put off (their claims given back).
        """
        # Bounded: a task waiting longer would run into its timeout. SlotsBusy puts the whole
        # task off, claimed nothing.
        async with self._running.take(len(delivery_ids), SLOTS_WAIT_S):
            claims = await self.deliveries.claim(delivery_ids, self.settings.lease_s)
            claimed_at = time.monotonic()
            results = await asyncio.gather(
                *(self._run(claim, claimed_at, slot_reserved) for claim in claims),
                return_exceptions=True,
            )
            attempted: list[Attempted] = []
            deferred: list[Deferred] = []
            for claim, result in zip(claims, results, strict=True):
                if isinstance(result, Deferred):
                    deferred.append(result)
                elif isinstance(result, tuple):
                    attempted.append(result)
                elif isinstance(result, BaseException):
                    # Not sent (a limit's Redis call failed, say): give the claim back so that
                    # the delivery goes again soon, without using up its attempt.
                    bound_log(claim).warning("delivery not sent", error=repr(result))
                    with contextlib.suppress(Exception):
                        await self.deliveries.release(claim.id, claim.attempt_count, UNSENT_RETRY_S)
                        deferred.append(
                            Deferred(claim.id, UNSENT_RETRY_S, claim.attempt_count - 1, False)
                        )
            await self.recorder.record(attempted)
            return deferred

    async def _run(
        self, claim: ClaimedDelivery, claimed_at: float, slot_reserved: bool
    ) -> Attempted | Deferred | None:
        """Attempt one claimed delivery once its endpoint's limits allow; None if it is held."""
        if claim.status == _HELD:
            bound_log(claim).info("delivery held: endpoint not active")
            return None
        if claim.previous_status == _SENDING:
            self.metrics.count("hookrelay_redeliveries_total")
            bound_log(claim).warning("redelivering: the previous attempt's lease expired")
        if not await self.limits.start(claim.endpoint_id, CONCURRENCY_WAIT_S, self._wait_at_most_s):
            return await self._defer(
                claim, CONCURRENCY_RETRY_S * self.rng.uniform(0.5, 1.5), slot_reserved
            )
        try:
            if claim.rate_limit_per_s is not None and not slot_reserved:
                wait_s = await self.limits.reserve_rate_slot(
                    claim.endpoint_id, claim.rate_limit_per_s
                )
                if wait_s > 0:
                    return await self._defer(claim, wait_s, slot_reserved=True)
            sent = await self.sender.send(claim, self._timeout_s(claimed_at))
            return claim, attempt_outcome(
                claim,
                sent,
                schedule_s=self.settings.retry_schedule_s,
                now=datetime.now(UTC),
                rng=self.rng,
            )
        finally:
            self.limits.finish(claim.endpoint_id)

    def _timeout_s(self, claimed_at: float) -> float:
        """The delivery timeout, or less when the lease has less left (minus time to record)."""
        lease_left_s = self.settings.lease_s - (time.monotonic() - claimed_at) - RECORD_MARGIN_S
        return max(0.1, min(lease_left_s, self.settings.delivery_timeout_s))

    async def _defer(self, claim: ClaimedDelivery, delay_s: float, slot_reserved: bool) -> Deferred:
        """Give the claim back without using up the attempt."""
        await self.deliveries.release(claim.id, claim.attempt_count, delay_s)
        self.metrics.count("hookrelay_deferred_total")
        return Deferred(claim.id, delay_s, claim.attempt_count - 1, slot_reserved)
