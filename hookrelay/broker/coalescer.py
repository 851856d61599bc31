"""Enqueueing the new deliveries of many concurrent requests together."""

from __future__ import annotations

import asyncio

from hookrelay.broker.queue import DeliveryQueue
from hookrelay.coalesce import Coalescer, Outcome

# Requests whose new deliveries one enqueue carries at most.
MAX_REQUESTS_PER_ENQUEUE = 1000
# Under load, enqueues start at most this often: each is a Redis round trip in the API and a
# queue task for a worker (about ten round trips of arq's), whatever the deliveries it carries.
ENQUEUE_PACE_S = 0.005


class EnqueueCoalescer:
    """Enqueues new deliveries from many concurrent requests together (see Coalescer): at low
    load each request enqueues at once, alone; under load the workers get fewer, fuller tasks.
    Each caller still learns when its deliveries are enqueued (or why not)."""

    def __init__(self, queue: DeliveryQueue) -> None:
        self._queue = queue
        self._together: Coalescer[list[str], None] = Coalescer(
            self._enqueue, MAX_REQUESTS_PER_ENQUEUE, ENQUEUE_PACE_S
        )

    async def enqueue(self, delivery_ids: list[str]) -> None:
        """Enqueue new deliveries (with those of other callers); return once they are. A
        caller cancelled meanwhile still has its deliveries enqueued: they are committed."""
        await asyncio.shield(self._together.submit(delivery_ids))

    async def _enqueue(self, requests: list[list[str]]) -> list[Outcome[None]]:
        await self._queue.enqueue_first_attempts([i for ids in requests for i in ids])
        return [None] * len(requests)
