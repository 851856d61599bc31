"""The worker process: an arq worker whose one task delivers one delivery."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import structlog
from arq import Worker
from arq.worker import func

from hookrelay.outbound import create_session
from hookrelay.queue import (
    DELIVER_TASK,
    DeliveryQueue,
    job_deserializer,
    job_serializer,
    redis_settings,
)
from hookrelay.secretbox import SecretBox
from hookrelay.settings import Settings
from hookrelay.store import Store
from hookrelay.worker.delivery import Deliverer

log = structlog.get_logger(__name__)

# How often the worker writes its health-check key to Redis.
HEALTH_CHECK_INTERVAL_S = 5
# On SIGTERM, in-flight deliveries get this long to finish before they are cancelled (their
# leases then expire and the sweeper sends them again).
SHUTDOWN_GRACE_S = 10


async def deliver(ctx: dict[str, Any], delivery_id: str) -> None:
    """The arq task: the job carries only a delivery id; all state is in Postgres."""
    deliverer: Deliverer = ctx["deliverer"]
    await deliverer.deliver(delivery_id)


def build_worker(settings: Settings) -> Worker:
    """Return an arq worker for hookrelay's queue, configured from `settings`."""

    async def startup(ctx: dict[str, Any]) -> None:
        store = await Store.connect(
            settings.require_database_url(), max_size=min(50, settings.worker_concurrency)
        )
        queue = DeliveryQueue(ctx["redis"], settings.queue_name)
        session = create_session(
            settings.allowed_cidrs, settings.delivery_timeout_s, settings.worker_concurrency
        )
        ctx["store"], ctx["session"] = store, session
        ctx["deliverer"] = Deliverer(
            settings, store, queue, SecretBox(settings.require_secret_key()), session
        )
        log.info(
            "worker started", queue=settings.queue_name, concurrency=settings.worker_concurrency
        )

    async def shutdown(ctx: dict[str, Any]) -> None:
        if "session" in ctx:
            await ctx["session"].close()
        if "store" in ctx:
            await ctx["store"].close()
        log.info("worker stopped")

    return Worker(
        functions=[func(deliver, name=DELIVER_TASK, max_tries=3)],
        queue_name=settings.queue_name,
        redis_settings=redis_settings(settings.require_redis_url()),
        on_startup=startup,
        on_shutdown=shutdown,
        job_serializer=job_serializer,
        job_deserializer=job_deserializer,
        keep_result=0,
        poll_delay=settings.worker_poll_delay_s,
        max_jobs=settings.worker_concurrency,
        # Past the lease a job's delivery can be claimed by another worker anyway.
        job_timeout=settings.lease_s,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        # Signals are handled by run_worker, which stops gracefully (see stop_worker).
        handle_signals=False,
        log_results=False,
    )


async def stop_worker(worker: Worker, main: asyncio.Task[None], grace_s: float) -> None:
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
        log.exception("the worker loop failed")
    await asyncio.gather(main, *worker.tasks.values(), return_exceptions=True)
    # arq's close() awaits these tasks again and would re-raise a cancellation.
    worker.tasks.clear()
    await worker.close()


async def run_worker(settings: Settings) -> None:
    """Run a worker until SIGINT or SIGTERM, then stop it gracefully."""
    worker = build_worker(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    main = asyncio.create_task(worker.async_run())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait([main, stopping], return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    log.info("worker stopping", in_flight=sum(not t.done() for t in worker.tasks.values()))
    await stop_worker(worker, main, SHUTDOWN_GRACE_S)
