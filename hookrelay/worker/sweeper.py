"""The sweeper: rebuilds the queue from Postgres, so that losing Redis loses nothing.

Every few seconds one worker (whichever takes the advisory lock) re-enqueues each delivery that
is overdue (its job may be gone: Redis restarted empty, or was flushed) and each one whose lease
expired (its worker died mid-attempt). Job ids make this safe: a delivery whose job still exists
is not enqueued twice, and the claim's conditional update means a delivery is never sent by two
workers at once.
"""

from __future__ import annotations

import asyncio

import structlog

from hookrelay.metrics import DeliveryMetrics
from hookrelay.queue import DeliveryQueue
from hookrelay.store import Store

log = structlog.get_logger(__name__)

# Any fixed number: it names the sweeper's lock among the database's advisory locks.
SWEEPER_LOCK_KEY = 0x686F6F6B73776570
# Deliveries re-enqueued per scan; a larger backlog is taken over the next scans.
SWEEP_BATCH = 1000
# After a failure (Postgres or Redis down) the sweeper waits longer, up to this.
MAX_BACKOFF_S = 30.0


async def sweep_once(store: Store, queue: DeliveryQueue, grace_s: float) -> int | None:
    """One scan; return how many deliveries were enqueued (None if another sweeper ran)."""
    found = await store.sweep(SWEEPER_LOCK_KEY, grace_s, SWEEP_BATCH)
    if found is None:
        return None
    if found:
        return await queue.enqueue(found)
    return 0


async def sweep_forever(
    store: Store, queue: DeliveryQueue, metrics: DeliveryMetrics, interval_s: float, grace_s: float
) -> None:
    """Scan every `interval_s` until cancelled; never stop on a failure, only back off."""
    delay = interval_s
    while True:
        try:
            enqueued = await sweep_once(store, queue, grace_s)
        except Exception as exc:
            log.warning("sweep failed; backing off", error=repr(exc), retry_in_s=delay)
            delay = min(delay * 2, MAX_BACKOFF_S)
        else:
            delay = interval_s
            if enqueued:
                metrics.count("hookrelay_sweeper_reenqueued_total", enqueued)
                log.info("sweeper re-enqueued deliveries", count=enqueued)
        await asyncio.sleep(delay)
