"""Replay: send a delivery's event to its endpoint again, as a new delivery; one by name, or
every lost one a filter matches, in batches; never to a disabled endpoint."""

from __future__ import annotations

import structlog

from hookrelay.errors import Conflict
from hookrelay.models import DeliveryFilter, ReplayResult
from hookrelay.services.enqueue import Enqueuer
from hookrelay.services.ports import EndpointReader, ReplayStore
from hookrelay.statuses import DeliveryStatus, EndpointStatus

log = structlog.get_logger(__name__)

# Deliveries replayed per transaction in a bulk replay.
REPLAY_BATCH = 2000


class Replays:
    """Makes new deliveries of old events, and enqueues them once they commit."""

    def __init__(
        self,
        deliveries: ReplayStore,
        endpoints: EndpointReader,
        enqueuer: Enqueuer,
        batch_size: int = REPLAY_BATCH,
    ) -> None:
        self._deliveries = deliveries
        self._endpoints = endpoints
        self._enqueuer = enqueuer
        self._batch_size = batch_size

    async def replay_delivery(self, app_id: str, delivery_id: str) -> tuple[str, str]:
        """Send a delivery's event to its endpoint again, as a new delivery, whatever became of
        earlier replays (asked for by name); return its id and the original it replays."""
        delivery = await self._deliveries.get(app_id, delivery_id)
        await self._refuse_if_disabled(app_id, delivery.endpoint_id)
        new_id, status, original = await self._deliveries.replay(app_id, delivery.id)
        if status == DeliveryStatus.PENDING:
            await self._enqueuer.enqueue_due([(new_id, 0)])
        log.info("delivery replayed", app_id=app_id, delivery_id=delivery.id, replay_id=new_id)
        return new_id, original

    async def replay_deliveries(
        self,
        app_id: str,
        filters: DeliveryFilter,
        dry_run: bool,
        include_replayed: bool = False,
    ) -> ReplayResult:
        """Replay the originals matching `filters` (disabled endpoints' excepted) that are still
        lost: never a replay, and unless `include_replayed`, no original that a replay recovered
        or is still replaying. In batches that each commit and enqueue on their own, so that
        memory and locks stay small."""
        if filters.endpoint_id is not None:
            await self._refuse_if_disabled(app_id, filters.endpoint_id)
        counted = await self._deliveries.count(app_id, filters, include_replayed)
        if dry_run:
            return counted
        replayed, cursor = 0, None
        while True:
            cursor, count, due = await self._deliveries.replay_batch(
                app_id, filters, include_replayed, cursor, self._batch_size
            )
            replayed += count
            await self._enqueuer.enqueue_new(due)
            if cursor is None:
                break
        log.info("deliveries replayed", app_id=app_id, replayed=replayed)
        return ReplayResult(counted.matched, replayed, counted.replayable)

    async def _refuse_if_disabled(self, app_id: str, endpoint_id: str) -> None:
        endpoint = await self._endpoints.get(app_id, endpoint_id)
        if endpoint.status == EndpointStatus.DISABLED:
            raise Conflict(
                "the endpoint is disabled; enable it (PATCH status active) before replaying",
                {"endpoint_id": endpoint_id, "disabled_reason": endpoint.disabled_reason},
            )
