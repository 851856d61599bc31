"""The queue task that delivers, and the consumer of a lane that runs it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

from hookrelay.broker import Broker, LaneConsumer, RetryTask
from hookrelay.settings import Settings
from hookrelay.worker.deliverer import SLOTS_WAIT_S, Deliverer
from hookrelay.worker.limits import SlotsBusy

# A queue task is cancelled this long after its wait for room (at most SLOTS_WAIT_S) and its
# lease: by then the HTTP request has long timed out and only recording can still be running.
TASK_TIMEOUT_MARGIN_S = 5.0
# A task that found no room among the deliveries in flight goes again after this.
SLOTS_BUSY_RETRY_S = 0.5


async def deliver(
    deliverer: Deliverer, delivery: str | list[str], slot_reserved: bool = False
) -> None:
    """Run a `deliver` task. It carries only ids (all state is in Postgres): one delivery, or a
    batch of new ones sent together; and whether a rate-limit slot is already reserved."""
    single = isinstance(delivery, str)
    ids = [delivery] if isinstance(delivery, str) else delivery
    try:
        deferred = await deliverer.deliver(ids, slot_reserved)
    except SlotsBusy:
        raise RetryTask(SLOTS_BUSY_RETRY_S) from None
    for put_off in deferred:
        if put_off.slot_reserved and not slot_reserved:
            # A new task (an id of its own) that knows its slot is reserved.
            await deliverer.queue.enqueue_reserved(
                put_off.delivery_id, put_off.attempts_made, put_off.delay_s
            )
        elif single:
            raise RetryTask(put_off.delay_s)
        else:
            # Put off alone, in a task of its own; the rest of the batch is done.
            later = datetime.now(UTC) + timedelta(seconds=put_off.delay_s)
            await deliverer.queue.enqueue([(put_off.delivery_id, put_off.attempts_made)], later)


def task_timeout_s(settings: Settings) -> float:
    """How long a delivery task may run: its wait for room, its lease, and a margin."""
    return settings.lease_s + SLOTS_WAIT_S + TASK_TIMEOUT_MARGIN_S


def lane_consumer(
    settings: Settings, broker: Broker, deliverer: Deliverer, lane: str, max_tasks: int
) -> LaneConsumer:
    """A consumer that runs `lane`'s delivery tasks with `deliverer`, not yet started."""
    return broker.lane_consumer(
        lane,
        partial(deliver, deliverer),
        max_tasks=max_tasks,
        poll_delay_s=settings.worker_poll_delay_s,
        task_timeout_s=task_timeout_s(settings),
    )
