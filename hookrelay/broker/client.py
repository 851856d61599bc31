"""Redis clients: the pooled one a process shares, and a one-off readiness probe."""

from __future__ import annotations

import redis
from arq.connections import ArqRedis
from redis.asyncio import BlockingConnectionPool

from hookrelay.broker.tasks import deserialize_task, serialize_task

REDIS_TIMEOUT_S = 5.0
REDIS_MAX_CONNECTIONS = 64
PROBE_TIMEOUT_S = 1.0


def open_redis(redis_url: str, default_lane: str) -> ArqRedis:
    """An arq Redis client that connects lazily and fails fast while Redis is down."""
    # Bounded: a fan-out enqueues many tasks at once, and they wait for a connection rather than
    # open one each. Timeouts make a hung Redis an error instead of a stuck task.
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
        job_serializer=serialize_task,
        job_deserializer=deserialize_task,
        default_queue_name=default_lane,
    )


def answers_ping(redis_url: str) -> bool:
    """Whether Redis at `redis_url` answers PING now (not while it loads its data from disk)."""
    client = redis.Redis.from_url(
        redis_url, socket_connect_timeout=PROBE_TIMEOUT_S, socket_timeout=PROBE_TIMEOUT_S
    )
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()
