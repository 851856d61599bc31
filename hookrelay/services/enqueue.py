"""Deliveries go to the queue after their rows commit, and Redis trouble never fails a request:
the rows are safe in Postgres and stay due, so the sweeper sends them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import structlog

from hookrelay.services.ports import DueDelivery, NewDeliveryQueue, Queue

log = structlog.get_logger(__name__)


class Enqueuer:
    """Enqueues committed deliveries: new ones together (coalesced), others one job each."""

    def __init__(self, queue: Queue, new_deliveries: NewDeliveryQueue) -> None:
        self._queue = queue
        self._new_deliveries = new_deliveries
        self._on_their_way: set[asyncio.Task[None]] = set()

    async def enqueue_new(self, delivery_ids: list[str]) -> None:
        """Enqueue deliveries just written, due now, for their first attempt."""
        if delivery_ids:
            await _logging_failure(self._new_deliveries.enqueue(delivery_ids))

    def enqueue_new_soon(self, delivery_ids: list[str]) -> None:
        """`enqueue_new` without waiting for it: ingest answers once its rows are committed,
        not after the queue's round trip too (which, paced under load, may wait up to 5 ms).
        `close` waits for the enqueues on their way."""
        if delivery_ids:
            task = asyncio.get_running_loop().create_task(self.enqueue_new(delivery_ids))
            self._on_their_way.add(task)
            task.add_done_callback(self._on_their_way.discard)

    async def close(self) -> None:
        """Wait for the enqueues on their way (a process stopping)."""
        await asyncio.gather(*self._on_their_way)

    async def enqueue_due(self, deliveries: list[DueDelivery]) -> None:
        """Enqueue deliveries due again (released from hold, replayed), each in its lane."""
        if deliveries:
            await _logging_failure(self._queue.enqueue(deliveries))


async def _logging_failure(enqueueing: Awaitable[object]) -> None:
    try:
        await enqueueing
    except Exception as exc:  # Redis trouble of any kind: the rows are safe in Postgres
        log.warning("enqueue failed; the sweeper will pick these up", error=repr(exc))
