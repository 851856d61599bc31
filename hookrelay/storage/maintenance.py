"""Upkeep: the sweeper's scan, retention, re-encrypting secrets, the queue's lag, and loading
rows in bulk for the benchmarks (sql/queries/maintenance.sql)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hookrelay.storage.db import Database

SweepCursor = tuple[datetime, str]
# Where a scan of overdue deliveries starts: before every (next_attempt_at, id).
SWEEP_START: SweepCursor = (datetime.min.replace(tzinfo=UTC), "")

# The columns of the rows `copy_log` takes, in order.
EVENT_COLUMNS = ("id", "app_id", "type", "job_id", "body", "created_at")
DELIVERY_COLUMNS = (
    "id",
    "app_id",
    "event_id",
    "endpoint_id",
    "status",
    "attempt_count",
    "last_status_code",
    "last_error",
    "created_at",
    "updated_at",
    "finished_at",
)


@dataclass(frozen=True)
class Sweep:
    # (delivery id, attempts made, due at): due for a while; their jobs may be lost, or waiting
    overdue: list[tuple[str, int, datetime]]
    # (delivery id, attempts made): expired leases and released holds, which have no job
    jobless: list[tuple[str, int]]
    next_cursor: SweepCursor  # where the next scan of overdue deliveries continues


@dataclass(frozen=True)
class Sealed:
    """An endpoint's encrypted secrets, as stored."""

    id: str
    secret_ciphertext: bytes
    secret_key_id: str
    previous_secret_ciphertext: bytes | None
    previous_secret_key_id: str | None


class Maintenance:
    """What the workers and the commands do to keep the data in shape."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def ping(self) -> None:
        """Check that the database answers."""
        await self.db.value("ping")

    # The sweeper

    async def sweep(
        self, interval_s: float, grace_s: float, limit: int, after: SweepCursor
    ) -> Sweep | None:
        """Find what may have lost its job: overdue deliveries (one page, after `after`), expired
        leases, and held deliveries of active endpoints (those are made due). None if another
        worker's sweep is recent."""
        async with self.db.transaction() as session:
            await session.execute("plan_once_per_connection")
            if await session.value("take_sweep_turn", interval_s) is None:
                return None
            due = await session.rows("due_deliveries", grace_s, *after, limit)
            expired = await session.rows("expired_leases", limit)
            released = await session.rows("release_stale_holds", limit)
        cursor = (due[-1]["next_attempt_at"], due[-1]["id"]) if len(due) == limit else None
        return Sweep(
            overdue=[(r["id"], r["attempt_count"], r["next_attempt_at"]) for r in due],
            jobless=[(r["id"], r["attempt_count"]) for r in (*expired, *released)],
            next_cursor=cursor or SWEEP_START,
        )

    async def oldest_due_age(self) -> float | None:
        """Seconds the oldest due delivery has waited; None if nothing is due."""
        age: float | None = await self.db.value("oldest_due_age")
        return age

    # Retention

    async def take_retention_turn(self, interval_s: float) -> bool:
        """True if no pruning pass began within `interval_s` (this caller's pass begins)."""
        return await self.db.value("take_retention_turn", interval_s) is not None

    async def prune_idempotency_keys(self, older_than_s: float, limit: int) -> int:
        """Delete up to `limit` Idempotency-Keys older than `older_than_s`; return how many."""
        return await self.db.execute("prune_idempotency_keys", older_than_s, limit)

    async def prune_portal_sessions(self) -> int:
        """Delete the portal sessions that have expired; return how many."""
        return await self.db.execute("prune_portal_sessions")

    # Encryption keys

    async def sealed_with_other_keys(self, key_id: str, limit: int) -> list[Sealed]:
        """Endpoints whose secret (or rotated-out secret) is encrypted with another key."""
        return await self.db.all(Sealed, "endpoints_sealed_with_other_keys", key_id, limit)

    async def reseal(self, before: Sealed, after: Sealed) -> bool:
        """Replace an endpoint's ciphertexts; False if they changed since `before` was read."""
        found = await self.db.value(
            "reseal_endpoint_secrets",
            after.id,
            after.secret_ciphertext,
            after.secret_key_id,
            after.previous_secret_ciphertext,
            after.previous_secret_key_id,
            before.secret_ciphertext,
        )
        return found is not None

    # Bulk loading (benchmarks)

    async def copy_log(
        self, events: Sequence[Sequence[Any]], deliveries: Sequence[Sequence[Any]]
    ) -> None:
        """Copy rows straight into the event log (COPY): events as EVENT_COLUMNS, deliveries
        as DELIVERY_COLUMNS. No delivery is made for an event, and no job enqueued."""
        async with self.db.session() as session:
            await session.copy("events", EVENT_COLUMNS, events)
            await session.copy("deliveries", DELIVERY_COLUMNS, deliveries)

    async def vacuum_log(self) -> None:
        """After a bulk load, what autovacuum does to the event log's tables in time (vacuum,
        statistics), so that reads do not pay for it, nor run beside it."""
        await self.db.execute("vacuum_log")

    async def checkpoint(self) -> None:
        """After a bulk load, write every changed page out now (see the query)."""
        await self.db.execute("checkpoint")
