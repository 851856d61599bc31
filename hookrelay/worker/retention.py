"""Retention: events older than the retention period go, with their deliveries and attempts,
in small batches (each its own short transaction, so no long lock), one pass at a time."""

from __future__ import annotations

import asyncio
import time

import structlog

from hookrelay.events import IDEMPOTENCY_TTL_S
from hookrelay.ids import id_bound
from hookrelay.storage.maintenance import Maintenance

log = structlog.get_logger(__name__)

# How often a pass may start (across all workers), and how much one pass may do.
RETENTION_INTERVAL_S = 60.0
PASS_BUDGET_S = 10.0
# Events per batch; each takes its deliveries and attempts along (a fan-out multiplies it).
EVENT_BATCH = 100
KEY_BATCH = 1000


async def prune_once(maintenance: Maintenance, retention_s: float, interval_s: float) -> int | None:
    """One pass if it is this worker's turn: how many events it deleted (None: not its turn)."""
    if not await maintenance.take_retention_turn(interval_s):
        return None
    cutoff = id_bound("evt_", round((time.time() - retention_s) * 1000))
    deadline = time.monotonic() + PASS_BUDGET_S
    deleted = 0
    while time.monotonic() < deadline:
        batch = await maintenance.prune_events(cutoff, EVENT_BATCH)
        deleted += batch
        if batch < EVENT_BATCH:
            break
    while time.monotonic() < deadline:
        if await maintenance.prune_idempotency_keys(IDEMPOTENCY_TTL_S, KEY_BATCH) < KEY_BATCH:
            break
    return deleted


async def prune_forever(
    maintenance: Maintenance, retention_s: float, interval_s: float = RETENTION_INTERVAL_S
) -> None:
    """Take a pruning turn every interval until cancelled; failures only postpone it."""
    while True:
        try:
            deleted = await prune_once(maintenance, retention_s, interval_s)
        except Exception as exc:
            log.warning("pruning failed; trying again later", error=repr(exc))
        else:
            if deleted:
                log.info("old events pruned", count=deleted)
        await asyncio.sleep(interval_s)
