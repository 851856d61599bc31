"""The worker process: two lanes (first attempts, retries), the sweeper, the pruner and the
metrics flusher, sharing one set of resources; run until a signal, then stopped gracefully.

Nothing here exits because Postgres or Redis went away: a lane whose loop fails is rebuilt after
a backoff, the sweeper backs off, and tasks that fail leave their delivery due for the sweeper.
"""

from __future__ import annotations

import asyncio
import signal

import structlog

from hookrelay.settings import Settings
from hookrelay.worker.lanes import Lane
from hookrelay.worker.resources import WorkerResources
from hookrelay.worker.retention import analyze_on_roll_forever, prune_forever
from hookrelay.worker.sweeper import Sweeper
from hookrelay.worker.task import task_timeout_s

log = structlog.get_logger(__name__)

# On SIGTERM, in-flight deliveries get this long past the HTTP timeout to finish; any still
# running are cancelled (their leases expire and the sweeper sends them again).
SHUTDOWN_GRACE_MARGIN_S = 5.0
METRICS_FLUSH_INTERVAL_S = 1.0


async def flush_metrics_forever(resources: WorkerResources) -> None:
    """Add this process's counts to the shared totals in Redis every second."""
    while True:
        await asyncio.sleep(METRICS_FLUSH_INTERVAL_S)
        try:
            await resources.metrics.flush(resources.broker.metrics)
        except Exception as exc:
            log.debug("metrics flush failed; kept for the next one", error=repr(exc))


class WorkerProcess:
    """Both lanes and the background loops of one `hookrelay worker` process."""

    def __init__(self, resources: WorkerResources) -> None:
        settings = resources.settings
        self.resources = resources
        broker, deliverer = resources.broker, resources.deliverer
        self.lanes = [
            # A first-attempt task may carry a batch of deliveries (see TASK_BATCH); the
            # deliverer bounds how many run at once, whatever the tasks.
            Lane(
                settings,
                broker,
                deliverer,
                broker.keys.first_attempt_lane,
                max(8, settings.worker_concurrency // 4),
            ),
            Lane(settings, broker, deliverer, broker.keys.retry_lane, settings.retry_concurrency),
        ]
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start the lanes, the sweeper, the pruner and the metrics flusher."""
        settings = self.resources.settings
        self._tasks = [asyncio.create_task(lane.run()) for lane in self.lanes]
        sweeper = Sweeper(
            self.resources.storage.maintenance,
            self.resources.broker.queue,
            settings.sweep_interval_s,
            settings.sweep_grace_s,
            # Due longer than any task may run and the sweep's grace.
            stale_after_s=task_timeout_s(settings) + settings.sweep_grace_s,
        )
        self._tasks.append(asyncio.create_task(sweeper.run(self.resources.metrics)))
        self._tasks.append(
            asyncio.create_task(
                prune_forever(
                    self.resources.storage,
                    settings.retention_s,
                    settings.partition_interval_s,
                )
            )
        )
        self._tasks.append(
            asyncio.create_task(
                analyze_on_roll_forever(self.resources.storage, settings.partition_interval_s)
            )
        )
        self._tasks.append(asyncio.create_task(flush_metrics_forever(self.resources)))
        log.info(
            "worker started",
            queue=settings.queue_name,
            concurrency=settings.worker_concurrency,
            retry_concurrency=settings.retry_concurrency,
        )

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop the lanes (in-flight deliveries get `grace_s`), the loops, then close all."""
        if grace_s is None:
            grace_s = self.resources.settings.delivery_timeout_s + SHUTDOWN_GRACE_MARGIN_S
        # Deliveries waiting for an endpoint's slot are put off rather than sent: waiting and
        # sending could outlast the grace, and a delivery cancelled mid-request is sent again.
        self.resources.deliverer.limits.stop_waiting()
        await asyncio.gather(*(lane.stop(grace_s) for lane in self.lanes))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self.resources.metrics.flush(self.resources.broker.metrics)
        except Exception as exc:
            log.debug("final metrics flush failed", error=repr(exc))
        await self.resources.close()
        log.info("worker stopped")


async def run_worker(settings: Settings) -> None:
    """Run a worker until SIGINT or SIGTERM, then stop it gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    process = WorkerProcess(await WorkerResources.open(settings))
    process.start()
    await stop.wait()
    log.info("worker stopping")
    await process.stop()
