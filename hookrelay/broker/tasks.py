"""What a queue task is (arq calls it a job): the function it names, its id and its payload.

"Job" is kept for a customer's AI job (hookrelay.jobs); arq's unit of work is a queue task here.
hookrelay has one task function, `deliver`. Its one argument is a delivery id, or a list of
new deliveries' ids sent together; its keyword `slot_reserved=True` says that the delivery's
rate-limit slot is already reserved. A task carries nothing else: all state is in Postgres.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from arq.jobs import serialize_job

DELIVER_TASK = "deliver"

# What runs a `deliver` task: (a delivery id or a batch of ids, slot_reserved).
DeliveryHandler = Callable[[str | list[str], bool], Awaitable[None]]


def delivery_task_id(delivery_id: str, attempts_made: int) -> str:
    """One task id per attempt: enqueueing the same attempt twice adds nothing."""
    return f"{delivery_id}:{attempts_made}"


def batch_task_id(delivery_ids: list[str]) -> str:
    """The id of a task carrying a batch of new deliveries."""
    return f"{delivery_task_id(delivery_ids[0], 0)}:x{len(delivery_ids)}"


def reserved_task_id(delivery_id: str, attempts_made: int) -> str:
    """The id of a task sent when its delivery's rate-limit slot comes."""
    return f"{delivery_task_id(delivery_id, attempts_made)}:slot"


def serialize_task(task: dict[str, Any]) -> bytes:
    """JSON, never pickle: write access to Redis must not mean code execution in workers."""
    return orjson.dumps(task)


def deserialize_task(data: bytes) -> dict[str, Any]:
    task: dict[str, Any] = orjson.loads(data)
    return task


def deliver_payload(
    deliveries: str | list[str], enqueued_at_ms: int, slot_reserved: bool = False
) -> bytes:
    """The stored form of a `deliver` task, exactly as arq's enqueue_job writes it."""
    kwargs = {"slot_reserved": True} if slot_reserved else {}
    return serialize_job(
        DELIVER_TASK, (deliveries,), kwargs, None, enqueued_at_ms, serializer=serialize_task
    )
