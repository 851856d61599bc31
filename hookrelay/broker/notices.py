"""Notices between processes, as app ids on Redis pub/sub channels: an app's log grew (read it
again), or one of its keys was revoked (forget its cached keys).

A log notice only says "read again"; the log itself is read from Postgres. A lost notice costs
latency, never an event (see LiveFeed's safety refresh). A lost revocation notice lets a revoked
key work until the key cache's entry expires (see KeyCache).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from hookrelay.broker.keys import Keys, listener_name
from hookrelay.coalesce import Pace

log = structlog.get_logger(__name__)

# Redis connection of a listener: a PING when idle this long, so that a silent, dead connection
# is noticed; a read waits at most this long.
REDIS_CONNECT_TIMEOUT_S = 5.0
PUBSUB_HEALTH_CHECK_S = 10.0
PUBSUB_READ_S = 5.0
RESUBSCRIBE_FIRST_S = 1.0
RESUBSCRIBE_MAX_S = 5.0
# Log notices go at most this often (a Redis round trip each, whatever the apps it names).
NOTICE_PACE_S = 0.005
# A revocation waits this long at most for Redis to take its notice.
PUBLISH_TIMEOUT_S = 2.0

# Called with the app id of each notice.
OnNotice = Callable[[str], None]
# Called whenever Redis confirms a subscription (the first time, and after each reconnection).
OnSubscribed = Callable[[], None]


class Notices:
    """Log notices and revocation notices of one deployment, sent and followed."""

    def __init__(self, redis: Redis, redis_url: str, keys: Keys) -> None:
        self._redis = redis
        self._redis_url = redis_url
        self._keys = keys

    def commit_notifier(self) -> CommitNotifier:
        """A publisher of log notices, for a process that commits events."""
        return CommitNotifier(self._redis, self._keys.log_channel)

    async def announce_revocation(self, app_id: str) -> None:
        """Tell every API process that a key of `app_id` was revoked (or the app deleted).
        Redis trouble is logged, not raised: the revocation itself is committed, and the other
        processes' cached entries expire by themselves."""
        try:
            await asyncio.wait_for(
                self._redis.publish(self._keys.revocation_channel, app_id), PUBLISH_TIMEOUT_S
            )
        except Exception as exc:
            log.warning("revocation notice not published", app_id=app_id, error=repr(exc))

    async def follow_log(self, on_notice: OnNotice, on_subscribed: OnSubscribed) -> None:
        """Follow log notices until cancelled (see `listen`)."""
        await listen(self._redis_url, self._keys.log_channel, on_notice, on_subscribed)

    async def follow_revocations(self, on_notice: OnNotice, on_subscribed: OnSubscribed) -> None:
        """Follow revocation notices until cancelled (see `listen`)."""
        await listen(self._redis_url, self._keys.revocation_channel, on_notice, on_subscribed)


async def listen(
    redis_url: str, channel: str, on_notice: OnNotice, on_subscribed: OnSubscribed
) -> None:
    """Follow a channel until cancelled: each notice goes to `on_notice`; `on_subscribed` runs
    whenever Redis confirms the subscription (the first time and after every reconnection,
    however it came about), so that the caller can make up for notices it may have missed."""
    backoff = RESUBSCRIBE_FIRST_S
    while True:
        client = Redis.from_url(
            redis_url,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S,
            socket_keepalive=True,
            health_check_interval=PUBSUB_HEALTH_CHECK_S,
            client_name=listener_name(channel),
        )
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(channel)
            while True:
                message = await pubsub.get_message(timeout=PUBSUB_READ_S)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    on_subscribed()
                    backoff = RESUBSCRIBE_FIRST_S
                elif message["type"] == "message":
                    on_notice(message["data"].decode())
        except Exception as exc:  # Redis trouble, or anything else: never stop listening
            level = log.warning if isinstance(exc, RedisError | OSError) else log.exception
            level("notices lost; resubscribing", channel=channel, error=repr(exc))
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RESUBSCRIBE_MAX_S)
        finally:
            await pubsub.aclose()
            await client.aclose()


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
        self._pace = Pace(NOTICE_PACE_S)

    def committed(self, app_id: str) -> None:
        """Note that `app_id`'s log grew; the notice goes out soon after."""
        self._pending.add(app_id)
        if self._flushing is None:
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def close(self) -> None:
        """Wait for the notices on their way."""
        if self._flushing is not None:
            await self._flushing

    async def _flush(self) -> None:
        try:
            while self._pending:
                # Under load, publishes go at most every NOTICE_PACE_S, each with every app
                # noted meanwhile; after a quiet spell a notice goes at once.
                await asyncio.sleep(self._pace.wait_s())
                self._pace.started()
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
