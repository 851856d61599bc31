"""The work queue (arq on Redis): it only says "deliver X now / at T"; Postgres holds the state."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import orjson
from arq.connections import ArqRedis
from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from redis.asyncio import BlockingConnectionPool
from redis.exceptions import RedisError

from hookrelay.errors import DependencyUnavailable

DELIVER_TASK = "deliver"
# Jobs written per Redis round trip when enqueueing many (a fan-out, a sweep, a bulk replay).
ENQUEUE_BATCH = 500
# New deliveries per job: arq's own cost per job (about ten Redis round trips) is shared by a
# batch, which a worker then sends concurrently.
JOB_BATCH = 100

# What arq's enqueue_job does for one job (skip it if the job or its result exists; else store
# the job and add it to its queue), done here for many jobs in one round trip.
_ENQUEUE_MANY = """
local job_prefix, result_prefix, expires_ms = ARGV[1], ARGV[2], ARGV[3]
local added = 0
for i = 4, #ARGV, 4 do
    local job_id, queue, score, payload = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    if redis.call('EXISTS', job_prefix .. job_id, result_prefix .. job_id) == 0 then
        redis.call('PSETEX', job_prefix .. job_id, expires_ms, payload)
        redis.call('ZADD', queue, score, job_id)
        added = added + 1
    end
end
return added
"""
REDIS_TIMEOUT_S = 5.0
REDIS_MAX_CONNECTIONS = 64


def job_serializer(job: dict[str, Any]) -> bytes:
    """JSON, never pickle: write access to Redis must not mean code execution in workers."""
    return orjson.dumps(job)


def job_deserializer(data: bytes) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(data)
    return result


def open_redis(redis_url: str, queue_name: str) -> ArqRedis:
    """An arq Redis client that connects lazily and fails fast while Redis is down."""
    # Bounded: a fan-out enqueues many jobs at once, and they wait for a connection rather than
    # open one each. Timeouts make a hung Redis an error instead of a stuck job.
    pool = BlockingConnectionPool.from_url(
        redis_url,
        max_connections=REDIS_MAX_CONNECTIONS,
        timeout=REDIS_TIMEOUT_S,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        socket_timeout=REDIS_TIMEOUT_S,
        socket_keepalive=True,
    )
    return ArqRedis(
        pool,
        job_serializer=job_serializer,
        job_deserializer=job_deserializer,
        default_queue_name=queue_name,
    )


def delivery_job_id(delivery_id: str, attempts_made: int) -> str:
    """One job id per attempt: enqueueing the same attempt twice is a no-op in arq."""
    return f"{delivery_id}:{attempts_made}"


class DeliveryQueue:
    """Enqueues delivery jobs: first attempts on one arq queue, retries on another, so that a
    failing endpoint's retries never hold up anyone's first attempt."""

    def __init__(self, redis: ArqRedis, queue_name: str, retry_queue_name: str) -> None:
        self.redis = redis
        self.queue_name = queue_name
        self.retry_queue_name = retry_queue_name
        self._enqueue_many = redis.register_script(_ENQUEUE_MANY)

    @classmethod
    def connect(cls, redis_url: str, queue_name: str, retry_queue_name: str) -> DeliveryQueue:
        """A queue on `redis_url`; it connects on first use, so a process starts while Redis is
        down and reconnects by itself when Redis is back."""
        return cls(open_redis(redis_url, queue_name), queue_name, retry_queue_name)

    async def close(self) -> None:
        await self.redis.aclose(close_connection_pool=True)

    async def ping(self) -> None:
        try:
            await self.redis.ping()
        except (RedisError, OSError) as exc:
            raise DependencyUnavailable("redis is unreachable") from exc

    async def enqueue_reserved(self, delivery_id: str, attempts_made: int, delay_s: float) -> None:
        """Enqueue a job for a delivery whose rate-limit slot is reserved `delay_s` from now."""
        await self.redis.enqueue_job(
            DELIVER_TASK,
            delivery_id,
            slot_reserved=True,
            _job_id=f"{delivery_job_id(delivery_id, attempts_made)}:slot",
            _queue_name=self._lane(attempts_made),
            _defer_by=delay_s,
        )

    def _lane(self, attempts_made: int) -> str:
        return self.queue_name if attempts_made == 0 else self.retry_queue_name

    async def enqueue(
        self, deliveries: list[tuple[str, int]], defer_until: datetime | None = None
    ) -> int:
        """Enqueue one job per (delivery id, attempts made so far); return how many were new
        (a job that already exists is left as it is)."""
        return await self._write(
            [
                (delivery_job_id(delivery_id, attempts), self._lane(attempts), delivery_id)
                for delivery_id, attempts in deliveries
            ],
            defer_until,
        )

    async def enqueue_first_attempts(self, delivery_ids: list[str]) -> int:
        """Enqueue new deliveries due now, up to JOB_BATCH per job: a fan-out or a bulk replay
        costs the workers one job per batch rather than one per delivery."""
        jobs: list[tuple[str, str, str | list[str]]] = []
        for start in range(0, len(delivery_ids), JOB_BATCH):
            batch = delivery_ids[start : start + JOB_BATCH]
            if len(batch) == 1:
                jobs.append((delivery_job_id(batch[0], 0), self.queue_name, batch[0]))
            else:
                job_id = f"{delivery_job_id(batch[0], 0)}:x{len(batch)}"
                jobs.append((job_id, self.queue_name, batch))
        return await self._write(jobs, None)

    async def due_waiting(self) -> int:
        """Jobs due now that no worker has finished, across both lanes."""
        now_ms = round(time.time() * 1000)
        total = 0
        for lane in (self.queue_name, self.retry_queue_name):
            total += int(await self.redis.zcount(lane, "-inf", now_ms))
        return total

    async def _write(
        self, jobs: list[tuple[str, str, str | list[str]]], defer_until: datetime | None
    ) -> int:
        """Write (job id, queue, delivery id or ids) jobs, ENQUEUE_BATCH per round trip."""
        now_ms = round(time.time() * 1000)
        score = now_ms if defer_until is None else round(defer_until.timestamp() * 1000)
        # arq drops a job that has not started within this long (the sweeper would enqueue the
        # delivery again).
        expires_ms = max(score - now_ms, 0) + self.redis.expires_extra_ms
        added = 0
        for start in range(0, len(jobs), ENQUEUE_BATCH):
            args: list[Any] = [job_key_prefix, result_key_prefix, expires_ms]
            for job_id, queue, deliveries in jobs[start : start + ENQUEUE_BATCH]:
                payload = serialize_job(
                    DELIVER_TASK, (deliveries,), {}, None, now_ms, serializer=job_serializer
                )
                args += [job_id, queue, score, payload]
            added += int(await self._enqueue_many(args=args))
        return added


class EnqueueCoalescer:
    """Enqueues new deliveries from many concurrent requests together.

    While one enqueue is on its way to Redis, the deliveries of other requests wait and then go
    in the next one, as shared jobs: at low load each request enqueues at once, alone; under
    load the workers get fewer, fuller jobs. Each caller still learns when its deliveries are
    enqueued (or why not).
    """

    def __init__(self, queue: DeliveryQueue) -> None:
        self._queue = queue
        self._waiting: list[str] = []
        self._waiting_done: asyncio.Future[None] | None = None
        self._flushing = False

    async def enqueue(self, delivery_ids: list[str]) -> None:
        if self._waiting_done is None:
            self._waiting_done = asyncio.get_running_loop().create_future()
        done = self._waiting_done
        self._waiting.extend(delivery_ids)
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        await asyncio.shield(done)

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch, done = self._waiting, self._waiting_done
                self._waiting, self._waiting_done = [], None
                assert done is not None
                try:
                    await self._queue.enqueue_first_attempts(batch)
                except Exception as exc:
                    done.set_exception(exc)
                else:
                    done.set_result(None)
        finally:
            self._flushing = False
