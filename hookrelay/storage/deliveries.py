"""Deliveries and their attempts: the worker's claim and record, the listings, and replays
(sql/queries/deliveries.sql)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

from hookrelay.errors import BadRequest, NotFound
from hookrelay.ids import id_bound, moment_of
from hookrelay.models import (
    Attempt,
    AttemptFilter,
    AttemptOutcome,
    ClaimedDelivery,
    Delivery,
    DeliveryFilter,
    Event,
    HealthPolicy,
    RecordedAttempt,
    ReplayResult,
)
from hookrelay.statuses import DeliveryStatus
from hookrelay.storage.db import Database
from hookrelay.storage.events import id_bound_of, insert_with_deliveries
from hookrelay.storage.partitions import interval_start

log = structlog.get_logger(__name__)

NO_DELIVERY = "no such delivery"
_STATUSES = frozenset(DeliveryStatus)


def filter_args(filters: DeliveryFilter) -> tuple[Any, ...]:
    """The parameters of a delivery filter, in the order list_deliveries and replay_deliveries
    take them ($4..$10); None leaves a filter out."""
    if filters.status is not None and filters.status not in _STATUSES:
        raise BadRequest(f"unknown delivery status {filters.status!r}")
    return (
        filters.status,
        filters.endpoint_id,
        filters.event_id,
        filters.event_type,
        filters.job_id,
        id_bound_of("dlv_", filters.since),
        id_bound_of("dlv_", filters.until),
    )


class Deliveries:
    """One event's delivery to one endpoint, and each attempt at it."""

    def __init__(self, db: Database, recent_window_s: float | None = None) -> None:
        self.db = db
        # Listings look first at this much time before their cursor (the width of a partition).
        self.recent_window_ms = round(recent_window_s * 1000) if recent_window_s else None

    # The worker

    async def claim(self, delivery_ids: list[str], lease_s: float) -> list[ClaimedDelivery]:
        """Take the lease on those deliveries that are due and not held by anyone else."""
        # Two statements, not a transaction (which would cost two more round trips on every
        # claim): if reading the events fails, the leases just taken run out and the sweeper
        # sends those deliveries again, as after a worker that died mid-attempt.
        async with self.db.session() as session:
            claimed = await session.rows("claim_deliveries", delivery_ids, lease_s)
            if not claimed:
                return []
            events = {
                event["id"]: event
                for event in await session.rows(
                    "claimed_events", list({row["event_id"] for row in claimed})
                )
            }
        # The claim's columns are a ClaimedDelivery's first fields, in order: built by
        # position (by name, building cost more than the rest of it).
        claims = [
            ClaimedDelivery(*(*row, event["type"], event["body"]))
            for row in claimed
            if (event := events.get(row["event_id"])) is not None
        ]
        if len(claims) < len(claimed):
            # An event goes only with its app (and its deliveries with it), or with its expired
            # partition once no unfinished delivery names it: never expected here.
            log.warning(
                "claimed deliveries whose event is gone",
                deliveries=[row["id"] for row in claimed if row["event_id"] not in events],
            )
        return claims

    async def release(self, delivery_id: str, attempt: int, delay_s: float) -> bool:
        """Undo a claim without using up the attempt; due again after `delay_s`."""
        found = await self.db.value("release_delivery", delivery_id, attempt, delay_s)
        return found is not None

    async def record_successes(self, outcomes: list[AttemptOutcome]) -> set[str]:
        """Record first attempts that succeeded, in one statement; return the ids recorded (a
        delivery whose lease was lost meanwhile is not)."""
        try:
            ids: list[str] = await self.db.value(
                "record_successes",
                [o.delivery_id for o in outcomes],
                [o.attempt_number for o in outcomes],
                [o.started_at for o in outcomes],
                [o.duration_ms for o in outcomes],
                [o.status_code for o in outcomes],
                [o.response_headers for o in outcomes],
                [o.response_body for o in outcomes],
                sorted({o.replay_of for o in outcomes if o.replay_of is not None}),
            )
        except NotFound:  # (a foreign key violation, translated by the database)
            if len(outcomes) == 1:
                return set()  # its endpoint was deleted during the attempt: the lease is void
            # One endpoint was deleted meanwhile: record the others one by one.
            recorded: set[str] = set()
            for outcome in outcomes:
                recorded |= await self.record_successes([outcome])
            return recorded
        return set(ids)

    async def record_attempt(
        self,
        outcome: AttemptOutcome,
        policy: HealthPolicy,
        follow_up: Callable[[RecordedAttempt], list[Event]],
    ) -> tuple[RecordedAttempt | None, list[str]]:
        """Record an attempt, the delivery's next state and the endpoint's health; in the same
        transaction, record the events `follow_up` derives from that (operational events).

        Returns None if the lease was lost (or the endpoint deleted meanwhile), and the ids of
        the deliveries now due.
        """
        args = (
            outcome.delivery_id,
            outcome.attempt_number,
            outcome.started_at,
            outcome.duration_ms,
            outcome.status_code,
            outcome.error_kind,
            outcome.error_message,
            outcome.response_headers,
            outcome.response_body,
            outcome.next_status,
            outcome.next_attempt_at,
            outcome.next_status == DeliveryStatus.SUCCEEDED,
            outcome.disable_endpoint,
            policy.disable_after_dead,
            policy.disable_after_failing_s,
            outcome.replay_of,
        )
        try:
            async with self.db.transaction() as session:
                record = await session.row("record_attempt", *args)
                if record is None:
                    return None, []
                recorded = RecordedAttempt(record["status"], record["disabled_reason"])
                due: list[str] = []
                events = follow_up(recorded)
                if events:
                    due = await insert_with_deliveries(session, events)
        except NotFound:  # (a foreign key violation, translated by the database)
            return None, []  # the endpoint (and its deliveries) was deleted during the attempt
        return recorded, due

    # Reading

    async def get(self, app_id: str, delivery_id: str) -> Delivery:
        """One delivery of an app, with what its replays say of it."""
        return await self.db.one(Delivery, "get_delivery", app_id, delivery_id, missing=NO_DELIVERY)

    async def of_event(self, event_id: str) -> list[Delivery]:
        """Every delivery of one event, with its endpoint's URL."""
        return await self.db.all(Delivery, "list_event_deliveries", event_id)

    async def attempts(self, delivery_id: str) -> list[Attempt]:
        """Every attempt at one delivery, in order."""
        return await self.db.all(Attempt, "delivery_attempts", delivery_id)

    async def list_attempts(
        self, app_id: str, filters: AttemptFilter, before: str | None, limit: int
    ) -> list[Attempt]:
        """Attempts at an app's deliveries, newest first, before the cursor `before`."""
        return await self.db.all(
            Attempt,
            "list_attempts",
            app_id,
            limit,
            before,
            filters.delivery_id,
            filters.endpoint_id,
            id_bound_of("att_", filters.since),
            id_bound_of("att_", filters.until),
            custom_plan=True,
        )

    # Replays

    async def count(
        self, app_id: str, filters: DeliveryFilter, include_replayed: bool
    ) -> ReplayResult:
        """How many originals a bulk replay matches (with `include_replayed`, also those a
        replay recovered or is replaying), and how many of them it would send."""
        record = await self.db.row(
            "replay_deliveries",
            app_id,
            None,  # no batch: count
            None,
            *filter_args(filters),
            include_replayed,
            custom_plan=True,
        )
        assert record is not None
        return ReplayResult(record["matched"], 0, record["replayable"])

    async def replay_batch(
        self,
        app_id: str,
        filters: DeliveryFilter,
        include_replayed: bool,
        before: str | None,
        limit: int,
    ) -> tuple[str | None, int, list[str]]:
        """Replay the next batch (newest first, from `before`) of the originals that `count`
        matches, as new deliveries, while no other bulk replay of the app is in a batch; return
        the cursor for the next batch (None when done), how many were replayed, and the new
        deliveries due now."""
        async with self.db.transaction() as session:
            await session.execute("lock_app_replays", app_id)
            record = await session.row(
                "replay_deliveries",
                app_id,
                limit,
                before,
                *filter_args(filters),
                include_replayed,
                custom_plan=True,
            )
        assert record is not None
        done = record["replayed"] < limit
        return (None if done else record["last_id"]), record["replayed"], record["due"]

    async def replay(self, app_id: str, delivery_id: str) -> tuple[str, str, str]:
        """A new delivery of the same event to the same endpoint; (its id, its status, the
        original it is a replay of)."""
        record = await self.db.row("replay_delivery", app_id, delivery_id)
        if record is None:
            raise NotFound(NO_DELIVERY)
        return record["id"], record["status"], record["replay_of"]

    def _window_start(self, before: str | None) -> str | None:
        """The smallest id of the recent window that ends at the cursor (or now)."""
        if self.recent_window_ms is None:
            return None
        end_ms = round(time.time() * 1000) if before is None else moment_of(before, "dlv_")
        if end_ms is None:
            return None
        return id_bound("dlv_", interval_start(end_ms, self.recent_window_ms))

    async def _page(
        self, app_id: str, limit: int, before: str | None, *filters: Any
    ) -> list[Delivery]:
        return await self.db.all(
            Delivery, "list_deliveries", app_id, limit, before, *filters, custom_plan=True
        )

    # Last in the class: below this method, `list` in an annotation would name it.
    async def list(
        self, app_id: str, filters: DeliveryFilter, before: str | None, limit: int
    ) -> list[Delivery]:
        """An app's deliveries, newest first, before the cursor `before`, with what their
        replays say of them.

        With a recent window, the page is looked for first in the window's time just before
        the cursor (or now): a query planned for each call plans every partition its bounds do
        not rule out (100 to 160 µs each), and the deliveries people page through are mostly
        recent. Only a page that window does not fill reads further back, in one more query.
        Ids sort by time, so the two together are the same page as one query over all."""
        *fixed, since, until = filter_args(filters)
        lost = filters.lost
        start = self._window_start(before)
        if start is None or (until is not None and until <= start):
            return await self._page(app_id, limit, before, *fixed, since, until, lost)
        recent_since = start if since is None else max(since, start)
        recent = await self._page(app_id, limit, before, *fixed, recent_since, until, lost)
        if len(recent) == limit or (since is not None and since >= start):
            return recent
        older = await self._page(app_id, limit - len(recent), before, *fixed, since, start, lost)
        return recent + older
