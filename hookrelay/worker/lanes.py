"""Lanes: one queue consumer per lane (first attempts, retries), rebuilt whenever its loop
fails, and stopped gracefully."""

from __future__ import annotations

import asyncio

import structlog

from hookrelay.broker import Broker, LaneConsumer
from hookrelay.settings import Settings
from hookrelay.worker.deliverer import Deliverer
from hookrelay.worker.task import lane_consumer

log = structlog.get_logger(__name__)

# A lane whose loop failed (Redis down) is rebuilt after a backoff growing up to this.
MAX_RESTART_BACKOFF_S = 10.0


class Lane:
    """One lane's queue, worked until stopped; its consumer rebuilt whenever its loop fails."""

    def __init__(
        self, settings: Settings, broker: Broker, deliverer: Deliverer, lane: str, max_tasks: int
    ) -> None:
        self.settings = settings
        self.broker = broker
        self.deliverer = deliverer
        self.lane = lane
        self.max_tasks = max_tasks
        self._stopping = asyncio.Event()
        self._current: LaneConsumer | None = None

    async def run(self) -> None:
        """Work the lane until `stop`, rebuilding its consumer after a backoff if it fails."""
        backoff = 0.5
        while not self._stopping.is_set():
            consumer = lane_consumer(
                self.settings, self.broker, self.deliverer, self.lane, self.max_tasks
            )
            main = consumer.start()
            self._current = consumer
            try:
                await asyncio.shield(main)
            except asyncio.CancelledError:
                if self._stopping.is_set():
                    return
                raise
            except Exception as exc:
                log.warning(
                    "worker lane failed; restarting",
                    queue=self.lane,
                    error=repr(exc),
                    retry_in_s=backoff,
                )
            finally:
                if not self._stopping.is_set():
                    self._current = None
                    await consumer.stop(grace_s=0)
            if self._stopping.is_set():
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_RESTART_BACKOFF_S)

    async def stop(self, grace_s: float) -> None:
        """Stop the lane, giving its in-flight deliveries `grace_s` to finish."""
        self._stopping.set()
        if self._current is not None:
            await self._current.stop(grace_s)
