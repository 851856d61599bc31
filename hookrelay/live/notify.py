"""Telling API processes that an app's log grew: app ids on one Redis pub/sub channel.

A notice only says "read again"; the log itself is read from Postgres. A lost notice costs
latency, never an event (see LiveFeed's safety refresh).
"""

from __future__ import annotations

import asyncio

import structlog
from redis.asyncio import Redis

log = structlog.get_logger(__name__)


def log_channel(queue_name: str) -> str:
    return f"{queue_name}:log"


class CommitNotifier:
    """Publishes, after commit, the ids of the apps whose logs grew.

    Nobody waits for it: ingest answers without this round trip. Apps noted while a publish is
    on its way go together in the next one, so under load it costs one pipeline per round trip,
    not one per event.
    """

    def __init__(self, redis: Redis, channel: str) -> None:
        self._redis = redis
        self._channel = channel
        self._pending: set[str] = set()
        self._flushing: asyncio.Task[None] | None = None

    def committed(self, app_id: str) -> None:
        self._pending.add(app_id)
        if self._flushing is None:
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def close(self) -> None:
        if self._flushing is not None:
            await self._flushing

    async def _flush(self) -> None:
        try:
            while self._pending:
                apps, self._pending = self._pending, set()
                try:
                    async with self._redis.pipeline(transaction=False) as pipe:
                        for app_id in apps:
                            pipe.publish(self._channel, app_id)
                        await pipe.execute()
                except Exception as exc:  # Redis trouble: readers catch up on their own
                    log.warning("log notice not published", error=repr(exc), apps=len(apps))
        finally:
            self._flushing = None
