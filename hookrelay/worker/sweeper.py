"""The sweeper: rebuilds the queue from Postgres, so that losing Redis loses nothing.

Every few seconds one worker (whichever takes the turn first) re-enqueues each delivery that
is overdue (its job may be gone: Redis restarted empty, or was flushed) and each one whose lease
expired (its worker died mid-attempt). Job ids make this safe: a delivery whose job still exists
is not enqueued twice, and the claim's conditional update means a delivery is never sent by two
workers at once.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import structlog

from hookrelay.broker import DeliveryQueue
from hookrelay.metrics import DeliveryMetrics
from hookrelay.storage.maintenance import SWEEP_START, Maintenance

log = structlog.get_logger(__name__)

# Deliveries of each kind re-enqueued per scan; a larger backlog is taken over the next scans.
SWEEP_BATCH = 1000
# After a failure (Postgres or Redis down) the sweeper waits longer, up to this.
MAX_BACKOFF_S = 30.0


class Sweeper:
    """Scans on this worker's turns; remembers where its scan of overdue deliveries got to."""

    def __init__(
        self,
        maintenance: Maintenance,
        queue: DeliveryQueue,
        interval_s: float,
        grace_s: float,
        stale_after_s: float,
    ) -> None:
        self.maintenance = maintenance
        self.queue = queue
        self.interval_s = interval_s
        self.grace_s = grace_s
        # A delivery due for longer than any job could take to run it has no job, whatever the
        # queue looks like.
        self.stale_after_s = stale_after_s
        self.cursor = SWEEP_START

    async def sweep_once(self) -> int | None:
        """One scan; how many deliveries it enqueued (None: another worker's turn)."""
        # A little less than the interval, so that this worker's next turn is not missed by
        # the few milliseconds its own timer runs early.
        sweep = await self.maintenance.sweep(
            self.interval_s * 0.9, self.grace_s, SWEEP_BATCH, self.cursor
        )
        if sweep is None:
            return None
        self.cursor = sweep.next_cursor
        work = list(sweep.jobless)
        # Overdue deliveries with jobs still queued are a backlog, not a loss: unless they are
        # stale, they are enqueued again only when no due job waits in Redis (it was flushed or
        # restarted empty). That keeps a busy queue free of duplicate jobs, without leaving a
        # jobless delivery (an enqueue that failed, a job that died) waiting for a quiet moment.
        stale_before = datetime.now(UTC) - timedelta(seconds=self.stale_after_s)
        stale = [(d, n) for d, n, due_at in sweep.overdue if due_at <= stale_before]
        work += stale
        if len(stale) < len(sweep.overdue) and await self.queue.due_waiting() == 0:
            work += [(d, n) for d, n, due_at in sweep.overdue if due_at > stale_before]
        return await self.queue.enqueue(work) if work else 0

    async def run(self, metrics: DeliveryMetrics) -> None:
        """Scan every interval until cancelled; never stop on a failure, only back off."""
        delay = self.interval_s
        while True:
            try:
                enqueued = await self.sweep_once()
            except Exception as exc:
                log.warning("sweep failed; backing off", error=repr(exc), retry_in_s=delay)
                delay = min(delay * 2, MAX_BACKOFF_S)
            else:
                delay = self.interval_s
                if enqueued:
                    metrics.count("hookrelay_sweeper_reenqueued_total", enqueued)
                    log.info("sweeper re-enqueued deliveries", count=enqueued)
            await asyncio.sleep(delay)
