"""The batched enqueue: what arq's enqueue_job does for one queue task, done for many tasks in
one Redis round trip (a fan-out, a sweep or a bulk replay enqueues hundreds at once).

It writes arq's own keys and payloads, so that arq's worker runs these tasks as its own; a test
runs them with arq's unpatched worker, and arq is pinned to the versions tested.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, NamedTuple

import structlog
from arq.connections import ArqRedis

from hookrelay.broker.keys import (
    DUE_CHANNEL_SUFFIX,
    TASK_KEY_PREFIX,
    TASK_RESULT_KEY_PREFIX,
    due_channel,
)
from hookrelay.broker.tasks import deliver_payload

log = structlog.get_logger(__name__)

# Tasks written per Redis round trip.
ENQUEUE_BATCH = 500

# Per task, as enqueue_job: skip it if the task or its result exists; else store its payload
# (expiring) and add it to its lane's sorted set, scored by its due time in ms. Then tell each
# lane that got a task when its tasks come due (its workers wait for that, see consumer.py).
_ENQUEUE_MANY = """
local task_prefix, result_prefix, expires_ms, due_suffix = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local added = 0
local due = {}
for i = 5, #ARGV, 4 do
    local task_id, lane, score, payload = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    if redis.call('EXISTS', task_prefix .. task_id, result_prefix .. task_id) == 0 then
        redis.call('PSETEX', task_prefix .. task_id, expires_ms, payload)
        redis.call('ZADD', lane, score, task_id)
        added = added + 1
        due[lane] = score
    end
end
for lane, score in pairs(due) do
    redis.call('PUBLISH', lane .. due_suffix, score)
end
return added
"""


async def announce_due(redis: ArqRedis, lane: str, due_ms: float) -> None:
    """Tell `lane`'s workers that a task comes due at `due_ms` (unix ms), for a task arq puts
    back itself (EnqueueMany's script tells them of the tasks it writes). Best effort: a lost
    notice costs a delay (a lane looks anyway every so often), so a failure is logged, not
    raised."""
    try:
        await redis.publish(due_channel(lane), round(due_ms))
    except Exception as exc:
        log.warning("due notice not published", lane=lane, error=repr(exc))


class DeliverTask(NamedTuple):
    """A `deliver` task to enqueue: its id, its lane, the delivery id (or ids) it carries, and
    whether its delivery's rate-limit slot is reserved."""

    task_id: str
    lane: str
    deliveries: str | list[str]
    slot_reserved: bool = False


class EnqueueMany:
    """Writes `deliver` tasks, ENQUEUE_BATCH per round trip."""

    def __init__(self, redis: ArqRedis) -> None:
        self._redis = redis
        self._script = redis.register_script(_ENQUEUE_MANY)

    async def __call__(self, tasks: list[DeliverTask], due_at: datetime | None) -> int:
        """Enqueue `tasks`, due at `due_at` (None: now); return how many were new (a task that
        already exists, or whose result does, is left as it is)."""
        now_ms = round(time.time() * 1000)
        score = now_ms if due_at is None else round(due_at.timestamp() * 1000)
        # arq drops a task that has not started within this long (the sweeper would enqueue the
        # delivery again).
        expires_ms = max(score - now_ms, 0) + self._redis.expires_extra_ms
        added = 0
        for start in range(0, len(tasks), ENQUEUE_BATCH):
            args: list[Any] = [TASK_KEY_PREFIX, TASK_RESULT_KEY_PREFIX, expires_ms]
            args.append(DUE_CHANNEL_SUFFIX)
            for task in tasks[start : start + ENQUEUE_BATCH]:
                payload = deliver_payload(task.deliveries, now_ms, task.slot_reserved)
                args += [task.task_id, task.lane, score, payload]
            added += int(await self._script(args=args))
        return added
