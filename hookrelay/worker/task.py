"""The arq task that delivers, and the settings of the arq workers that run it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from arq.worker import Retry, func

from hookrelay.queue import DELIVER_TASK, job_deserializer, job_serializer, open_redis
from hookrelay.settings import Settings
from hookrelay.worker.deliverer import SLOTS_WAIT_S, Deliverer
from hookrelay.worker.limits import SlotsBusy

# How often the worker writes its health-check key to Redis.
HEALTH_CHECK_INTERVAL_S = 5
# arq cancels a job this long after its wait for room (at most SLOTS_WAIT_S) and its lease:
# by then the HTTP request has long timed out and only recording can still be running.
JOB_TIMEOUT_MARGIN_S = 5.0
# A job that found no room among the deliveries in flight goes again after this.
SLOTS_BUSY_RETRY_S = 0.5
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


def job_timeout_s(settings: Settings) -> float:
    """How long arq lets a delivery job run: its wait for room, its lease, and a margin."""
    return settings.lease_s + SLOTS_WAIT_S + JOB_TIMEOUT_MARGIN_S


def worker_settings(
    settings: Settings, deliverer: Deliverer, queue_name: str, max_jobs: int
) -> dict[str, Any]:
    """The arguments of an arq worker for one lane (queue)."""
    return {
        "functions": [func(deliver, name=DELIVER_TASK, max_tries=MAX_JOB_TRIES)],
        "queue_name": queue_name,
        "redis_pool": open_redis(settings.require_redis_url(), queue_name),
        "ctx": {"deliverer": deliverer},
        "job_serializer": job_serializer,
        "job_deserializer": job_deserializer,
        "keep_result": 0,
        "poll_delay": settings.worker_poll_delay_s,
        "max_jobs": max_jobs,
        "job_timeout": job_timeout_s(settings),
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
        # Signals are handled by run_worker, which stops gracefully (see stop_lane).
        "handle_signals": False,
        "log_results": False,
    }
