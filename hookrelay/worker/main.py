"""The worker process: an arq worker whose one task delivers one delivery."""

from __future__ import annotations

import asyncio
import contextlib
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


def build_worker(settings: Settings, handle_signals: bool = True) -> Worker:
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
        handle_signals=handle_signals,
        job_completion_wait=SHUTDOWN_GRACE_S,
        log_results=False,
    )


async def run_worker(settings: Settings) -> None:
    """Run a worker until SIGINT or SIGTERM."""
    worker = build_worker(settings)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await worker.async_run()
    finally:
        await worker.close()
