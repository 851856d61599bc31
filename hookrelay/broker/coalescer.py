"""Enqueueing the new deliveries of many concurrent requests together."""

from __future__ import annotations

import asyncio

from hookrelay.broker.queue import DeliveryQueue


class EnqueueCoalescer:
    """Enqueues new deliveries from many concurrent requests together.

    While one enqueue is on its way to Redis, the deliveries of other requests wait and then go
    in the next one, as shared tasks: at low load each request enqueues at once, alone; under
    load the workers get fewer, fuller tasks. Each caller still learns when its deliveries are
    enqueued (or why not).
    """

    def __init__(self, queue: DeliveryQueue) -> None:
        self._queue = queue
        self._waiting: list[str] = []
        self._waiting_done: asyncio.Future[None] | None = None
        self._flushing = False

    async def enqueue(self, delivery_ids: list[str]) -> None:
        """Enqueue new deliveries (with those of other callers); return once they are."""
        if self._waiting_done is None:
            self._waiting_done = asyncio.get_running_loop().create_future()
        done = self._waiting_done
        self._waiting.extend(delivery_ids)
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        await asyncio.shield(done)

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch, done = self._waiting, self._waiting_done
                self._waiting, self._waiting_done = [], None
                assert done is not None
                try:
                    await self._queue.enqueue_first_attempts(batch)
                except Exception as exc:
                    done.set_exception(exc)
                else:
                    done.set_result(None)
        finally:
            self._flushing = False
