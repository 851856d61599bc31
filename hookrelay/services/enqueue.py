"""Deliveries go to the queue after their rows commit, and Redis trouble never fails a request:
the rows are safe in Postgres and stay due, so the sweeper sends them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import structlog

from hookrelay.services.ports import DueDelivery, NewDeliveryQueue, Queue

log = structlog.get_logger(__name__)

# New deliveries' enqueues on their way at most (each a request's); past it, the sweeper's.
MAX_ON_THEIR_WAY = 10_000
# How long a stopping process waits for the enqueues on their way.
CLOSE_WAIT_S = 5.0


class Enqueuer:
    """Enqueues committed deliveries: new ones together (coalesced), others one job each."""

    def __init__(self, queue: Queue, new_deliveries: NewDeliveryQueue) -> None:
        self._queue = queue
        self._new_deliveries = new_deliveries
        self._on_their_way: set[asyncio.Task[None]] = set()
        self._left_to_sweeper = 0

    async def enqueue_new(self, delivery_ids: list[str]) -> None:
        """Enqueue deliveries just written, due now, for their first attempt."""
        if delivery_ids:
            await _logging_failure(self._new_deliveries.enqueue(delivery_ids))

    def enqueue_new_soon(self, delivery_ids: list[str]) -> None:
        """`enqueue_new` without waiting for it: ingest answers once its rows are committed,
        not after the queue's round trip too (which, paced under load, may wait up to 5 ms).
        `close` waits for the enqueues on their way. While MAX_ON_THEIR_WAY are (Redis hangs),
        deliveries are left to the sweeper rather than held in memory without bound."""
        if not delivery_ids:
            return
        if len(self._on_their_way) >= MAX_ON_THEIR_WAY:
            self._left_to_sweeper += len(delivery_ids)
            if self._left_to_sweeper == len(delivery_ids):  # once per spell
                log.warning("enqueues backed up; the sweeper will pick new deliveries up")
            return
        self._left_to_sweeper = 0
        task = asyncio.get_running_loop().create_task(self.enqueue_new(delivery_ids))
        self._on_their_way.add(task)
        task.add_done_callback(self._on_their_way.discard)

    async def close(self, wait_s: float = CLOSE_WAIT_S) -> None:
        """Wait for the enqueues on their way (a process stopping), `wait_s` at most: what is
        not enqueued by then is left to the sweeper."""
        if self._on_their_way:
            _, late = await asyncio.wait(self._on_their_way, timeout=wait_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def enqueue_due(self, deliveries: list[DueDelivery]) -> None:
        """Enqueue deliveries due again (released from hold, replayed), each in its lane."""
        if deliveries:
            await _logging_failure(self._queue.enqueue(deliveries))


async def _logging_failure(enqueueing: Awaitable[object]) -> None:
    try:
        await enqueueing
    except Exception as exc:  # Redis trouble of any kind: the rows are safe in Postgres
        log.warning("enqueue failed; the sweeper will pick these up", error=repr(exc))
