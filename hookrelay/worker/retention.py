"""Retention: the event log's partitions are made ahead of need and dropped whole once every
row in them is older than the retention period; expired Idempotency-Keys are deleted in small
batches (each its own short transaction, so no long lock), expired portal sessions at once (a
few rows). One turn at a time, across workers."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import structlog

from hookrelay.events import IDEMPOTENCY_TTL_S
from hookrelay.storage import Storage
from hookrelay.storage.partitions import interval_ms, interval_start

log = structlog.get_logger(__name__)

# How often a turn may start (across all workers), and how long its batched deletes may take.
RETENTION_INTERVAL_S = 60.0
PASS_BUDGET_S = 10.0
KEY_BATCH = 1000
# How long after a partition becomes the current one its statistics are refreshed: time for a
# few rows to arrive, short enough that plans which read it whole do not last.
ROLL_SETTLE_S = 2.0


@dataclass(frozen=True)
class Turn:
    made: list[str]  # partitions made ahead
    dropped: list[str]  # partitions dropped
    keys_deleted: int  # expired Idempotency-Keys
    sessions_deleted: int  # expired portal sessions


async def retention_turn(
    storage: Storage, retention_s: float, partition_interval_s: float, interval_s: float
) -> Turn | None:
    """One turn if it is this worker's (None: another worker's turn began within
    `interval_s`): make the partitions ahead, drop the expired, delete expired keys and
    portal sessions."""
    if not await storage.maintenance.take_retention_turn(interval_s):
        return None
    now_ms = round(time.time() * 1000)
    made = await storage.partitions.make_ahead(now_ms, partition_interval_s)
    dropped = await storage.partitions.drop_expired(now_ms, retention_s)
    deadline = time.monotonic() + PASS_BUDGET_S
    keys_deleted = 0
    while time.monotonic() < deadline:
        batch = await storage.maintenance.prune_idempotency_keys(IDEMPOTENCY_TTL_S, KEY_BATCH)
        keys_deleted += batch
        if batch < KEY_BATCH:
            break
    sessions_deleted = await storage.maintenance.prune_portal_sessions()
    return Turn(made, dropped, keys_deleted, sessions_deleted)


async def prune_forever(
    storage: Storage,
    retention_s: float,
    partition_interval_s: float,
    interval_s: float = RETENTION_INTERVAL_S,
) -> None:
    """Take a retention turn every interval until cancelled; failures only postpone it."""
    while True:
        try:
            await retention_turn(storage, retention_s, partition_interval_s, interval_s)
        except Exception as exc:
            log.warning("retention turn failed; trying again later", error=repr(exc))
        await asyncio.sleep(interval_s)


async def analyze_on_roll_forever(storage: Storage, partition_interval_s: float) -> None:
    """Just after each partition boundary, refresh the statistics of the partitions that became
    current (Partitions.analyze_current) until cancelled; failures only wait for the next."""
    width_ms = interval_ms(partition_interval_s)
    while True:
        now_ms = time.time_ns() // 1_000_000  # floored: a rounded up ms could skip a boundary
        boundary_ms = interval_start(now_ms, width_ms) + width_ms
        await asyncio.sleep((boundary_ms - now_ms) / 1000 + ROLL_SETTLE_S)
        try:
            await storage.partitions.analyze_current(round(time.time() * 1000))
        except Exception as exc:
            log.warning("refreshing the current partitions' statistics failed", error=repr(exc))
