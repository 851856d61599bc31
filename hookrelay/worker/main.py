"""The worker process: two arq lanes (first attempts, retries), the sweeper and the metrics
flusher, sharing one store, one HTTP client and one set of endpoint limits.

Nothing here exits because Postgres or Redis went away: a lane whose loop fails is rebuilt after
a backoff, the sweeper backs off, and jobs that fail leave their delivery due for the sweeper.
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from aiohttp.abc import AbstractResolver
from arq import Worker
from arq.worker import Retry, func

from hookrelay.metrics import DeliveryMetrics, metrics_key
from hookrelay.outbound import create_session
from hookrelay.queue import (
    DELIVER_TASK,
    DeliveryQueue,
    job_deserializer,
    job_serializer,
    open_redis,
)
from hookrelay.settings import Settings
from hookrelay.storage import Storage
from hookrelay.worker.delivery import SLOTS_WAIT_S, Deliverer
from hookrelay.worker.limits import EndpointLimits, SlotsBusy
from hookrelay.worker.retention import prune_forever
from hookrelay.worker.sweeper import Sweeper

log = structlog.get_logger(__name__)

# How often the worker writes its health-check key to Redis.
HEALTH_CHECK_INTERVAL_S = 5
# On SIGTERM, in-flight deliveries get this long past the HTTP timeout to finish; any still
# running are cancelled (their leases expire and the sweeper sends them again).
SHUTDOWN_GRACE_MARGIN_S = 5.0
# arq cancels a job this long after its wait for room (at most SLOTS_WAIT_S) and its lease:
# by then the HTTP request has long timed out and only recording can still be running.
JOB_TIMEOUT_MARGIN_S = 5.0
# A job that found no room among the deliveries in flight goes again after this.
SLOTS_BUSY_RETRY_S = 0.5
# A lane whose loop failed (Redis down) is rebuilt after a backoff growing up to this.
MAX_RESTART_BACKOFF_S = 10.0
METRICS_FLUSH_INTERVAL_S = 1.0
# A deferred job may be put off many times (a slow or rate-limited endpoint); arq's own limit on
# tries must never be what stops it.
MAX_JOB_TRIES = 1_000_000


async def deliver(
    ctx: dict[str, Any], delivery: str | list[str], slot_reserved: bool = False
) -> None:
    """The arq task. A job carries only ids (all state is in Postgres): one delivery, or a
    batch of new ones sent together; and whether a rate-limit slot is already reserved."""
    deliverer: Deliverer = ctx["deliverer"]
    single = isinstance(delivery, str)
    ids = [delivery] if isinstance(delivery, str) else delivery
    try:
        deferred = await deliverer.deliver(ids, slot_reserved)
    except SlotsBusy:
        raise Retry(defer=SLOTS_BUSY_RETRY_S) from None
    for put_off in deferred:
        if put_off.slot_reserved and not slot_reserved:
            # A new job (an id of its own) that knows its slot is reserved.
            await deliverer.queue.enqueue_reserved(
                put_off.delivery_id, put_off.attempts_made, put_off.delay_s
            )
        elif single:
            raise Retry(defer=put_off.delay_s)
        else:
            # Put off alone, in a job of its own; the rest of the batch is done.
            later = datetime.now(UTC) + timedelta(seconds=put_off.delay_s)
            await deliverer.queue.enqueue([(put_off.delivery_id, put_off.attempts_made)], later)


@dataclass
class WorkerResources:
    """What the lanes of one worker process share."""

    settings: Settings
    store: Storage
    queue: DeliveryQueue
    deliverer: Deliverer
    metrics: DeliveryMetrics

    @classmethod
    async def open(
        cls, settings: Settings, resolver: AbstractResolver | None = None
    ) -> WorkerResources:
        store = await Storage.open(
            settings.require_database_url(),
            max_size=min(50, settings.worker_concurrency + settings.retry_concurrency),
        )
        queue = DeliveryQueue.connect(
            settings.require_redis_url(), settings.queue_name, settings.retry_queue_name
        )
        session = create_session(
            settings.allowed_cidrs,
            settings.delivery_timeout_s,
            settings.worker_concurrency + settings.retry_concurrency,
            resolver,
        )
        metrics = DeliveryMetrics()
        limits = EndpointLimits(queue.redis, settings.queue_name, settings.endpoint_concurrency)
        box = settings.secret_box()
        deliverer = Deliverer(settings, store, queue, box, session, limits, metrics)
        return cls(settings, store, queue, deliverer, metrics)

    async def close(self) -> None:
        await self.deliverer.notifier.close()
        await self.deliverer.session.close()
        await self.queue.close()
        await self.store.close()


class LaneWorker(Worker):
    """arq's worker, minus round trips spent on its own running jobs.

    Each poll reads the ids of due jobs, and a running job stays among them until it ends;
    arq checks every id read against Redis (three round trips) before finding it already runs.
    Under load that was most of the worker's Redis traffic.
    """

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        running = self.tasks
        await super().start_jobs(
            [
                job_id
                for job_id in job_ids
                if (task := running.get(job_id.decode())) is None or task.done()
            ]
        )


def build_worker(resources: WorkerResources, queue_name: str, max_jobs: int) -> Worker:
    """Return an arq worker for one lane (queue)."""
    settings = resources.settings
    return LaneWorker(
        functions=[func(deliver, name=DELIVER_TASK, max_tries=MAX_JOB_TRIES)],
        queue_name=queue_name,
        redis_pool=open_redis(settings.require_redis_url(), queue_name),
        ctx={"deliverer": resources.deliverer},
        job_serializer=job_serializer,
        job_deserializer=job_deserializer,
        keep_result=0,
        poll_delay=settings.worker_poll_delay_s,
        max_jobs=max_jobs,
        job_timeout=settings.lease_s + SLOTS_WAIT_S + JOB_TIMEOUT_MARGIN_S,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        # Signals are handled by run_worker, which stops gracefully (see stop_lane).
        handle_signals=False,
        log_results=False,
    )


async def stop_lane(worker: Worker, main: asyncio.Task[None], grace_s: float) -> None:
    """Stop taking jobs, give in-flight deliveries `grace_s` to finish, cancel the rest, close.

    A cancelled delivery keeps its lease; when the lease expires it is sent again.
    """
    # In burst mode with no jobs left to start, arq's main loop waits for the running jobs and
    # returns by itself, between Redis calls rather than in the middle of one.
    worker.allow_pick_jobs = False
    worker.burst = True
    worker.max_burst_jobs = 0
    try:
        await asyncio.wait_for(asyncio.shield(main), grace_s)
    except TimeoutError:
        log.warning("deliveries still running after the grace period; cancelling them")
        for task in worker.tasks.values():
            task.cancel()
        main.cancel()
    except Exception:
        pass  # the lane had already failed; run_lane logged it
    await asyncio.gather(main, *worker.tasks.values(), return_exceptions=True)
    # arq's close() awaits these tasks again and would re-raise a cancellation.
    worker.tasks.clear()
    try:
        await worker.close()
    except Exception as exc:
        log.warning("closing a lane failed", error=repr(exc))


class Lane:
    """One arq queue, worked until stopped; rebuilt whenever its loop fails."""

    def __init__(self, resources: WorkerResources, queue_name: str, max_jobs: int) -> None:
        self.resources = resources
        self.queue_name = queue_name
        self.max_jobs = max_jobs
        self._stopping = asyncio.Event()
        self._current: tuple[Worker, asyncio.Task[None]] | None = None

    async def run(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            worker = build_worker(self.resources, self.queue_name, self.max_jobs)
            main = asyncio.create_task(worker.async_run())
            self._current = (worker, main)
            try:
                await asyncio.shield(main)
            except asyncio.CancelledError:
                if self._stopping.is_set():
                    return
                raise
            except Exception as exc:
                log.warning(
                    "worker lane failed; restarting",
                    queue=self.queue_name,
                    error=repr(exc),
                    retry_in_s=backoff,
                )
            finally:
                if not self._stopping.is_set():
                    self._current = None
                    await stop_lane(worker, main, grace_s=0)
            if self._stopping.is_set():
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_RESTART_BACKOFF_S)

    async def stop(self, grace_s: float) -> None:
        self._stopping.set()
        if self._current is not None:
            worker, main = self._current
            await stop_lane(worker, main, grace_s)


async def flush_metrics_forever(resources: WorkerResources) -> None:
    key = metrics_key(resources.settings.queue_name)
    while True:
        await asyncio.sleep(METRICS_FLUSH_INTERVAL_S)
        try:
            await resources.metrics.flush(resources.queue.redis, key)
        except Exception as exc:
            log.debug("metrics flush failed; kept for the next one", error=repr(exc))


class WorkerProcess:
    """Both lanes and the background loops of one `hookrelay worker` process."""

    def __init__(self, resources: WorkerResources) -> None:
        settings = resources.settings
        self.resources = resources
        self.lanes = [
            # A first-attempt job may carry a batch of deliveries (see JOB_BATCH); the deliverer
            # bounds how many run at once, whatever the jobs.
            Lane(self.resources, settings.queue_name, max(8, settings.worker_concurrency // 4)),
            Lane(self.resources, settings.retry_queue_name, settings.retry_concurrency),
        ]
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        settings = self.resources.settings
        self._tasks = [asyncio.create_task(lane.run()) for lane in self.lanes]
        sweeper = Sweeper(
            self.resources.store.maintenance,
            self.resources.queue,
            settings.sweep_interval_s,
            settings.sweep_grace_s,
            stale_after_s=SLOTS_WAIT_S
            + settings.lease_s
            + JOB_TIMEOUT_MARGIN_S
            + settings.sweep_grace_s,
        )
        self._tasks.append(asyncio.create_task(sweeper.run(self.resources.metrics)))
        self._tasks.append(
            asyncio.create_task(
                prune_forever(self.resources.store.maintenance, settings.retention_s)
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
        if grace_s is None:
            grace_s = self.resources.settings.delivery_timeout_s + SHUTDOWN_GRACE_MARGIN_S
        await asyncio.gather(*(lane.stop(grace_s) for lane in self.lanes))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self.resources.metrics.flush(
                self.resources.queue.redis, metrics_key(self.resources.settings.queue_name)
            )
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
