"""Reading apps' event logs live: woken by Redis pub/sub, never by polling Postgres per client.

Each API process keeps, per app that someone is following, a tail: the app's newest events in
commit order, read from Postgres once per notice however many clients wait. A client whose
position is inside the tail reads from memory; one further back (resuming after a while) reads
Postgres itself until it catches up. Waiting clients cost no database work.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from hookrelay.errors import DependencyUnavailable, Throttled
from hookrelay.models import LOG_START, Event, LogFilter, LogPosition, LogRead

log = structlog.get_logger(__name__)

ANY_EVENT = LogFilter()
# Events read per query by a tail.
TAIL_PAGE = 500
# A tail keeps at most this many events and bytes of bodies; a client further back reads
# Postgres, so memory stays bounded whatever the clients do.
TAIL_MAX_EVENTS = 2000
TAIL_MAX_BYTES = 4 * 1024 * 1024
# While committed events wait behind an older open transaction, the tail reads again after
# this long, doubling up to the maximum.
HELD_BACK_FIRST_S = 0.005
HELD_BACK_MAX_S = 0.5
# Each followed app's tail is read this often even without a notice: a notice lost (a process
# died between commit and publish) delays events by at most this much.
SAFETY_REFRESH_S = 30.0
# A tail nobody follows is kept this long (long-pollers come back between polls), then dropped.
TAIL_LINGER_S = 30.0
HOUSEKEEPING_S = 5.0
RETRY_S = 1.0


@dataclass(eq=False)
class Tail:
    """One app's newest events, in commit order, and the readers following them."""

    app_id: str
    # None until primed; then every event after `floor` up to `position` is in `events`.
    position: LogPosition | None = None
    floor: LogPosition = LOG_START
    events: list[Event] = field(default_factory=list)
    size: int = 0
    readers: int = 0
    streams: int = 0
    dirty: bool = True
    refreshed_at: float = 0.0
    idle_since: float = 0.0
    refreshing: asyncio.Task[None] | None = None
    moved: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def read_after(self, after: LogPosition, filters: LogFilter, limit: int) -> LogRead | None:
        """The events after `after` from memory, or None if the tail does not reach back."""
        if self.position is None or after < self.floor:
            return None
        taken: list[Event] = []
        for event in self.events[bisect.bisect_right(self.events, after, key=_position) :]:
            if filters.matches(event):
                taken.append(event)
                if len(taken) == limit:
                    return LogRead(taken, event.position)
        return LogRead(taken, max(after, self.position))

    def advance(self, page: LogRead) -> None:
        for event in page.events:
            self.events.append(event)
            self.size += len(event.body)
        assert self.position is not None
        self.position = max(self.position, page.position)
        # Trim the oldest events beyond the caps; the floor moves up past them.
        excess = max(len(self.events) - TAIL_MAX_EVENTS, 0)
        dropped = sum(len(e.body) for e in self.events[:excess])
        while excess < len(self.events) and self.size - dropped > TAIL_MAX_BYTES:
            dropped += len(self.events[excess].body)
            excess += 1
        if excess:
            self.floor = self.events[excess - 1].position
            self.size -= dropped
            del self.events[:excess]
        self.wake()

    def wake(self) -> None:
        """Wake every reader waiting on this tail (it moved, or the feed is closing)."""
        moved, self.moved = self.moved, asyncio.get_running_loop().create_future()
        moved.set_result(None)


def _position(event: Event) -> LogPosition:
    return event.position


class EventLog(Protocol):
    """The event log in commit order (hookrelay.storage.events.Events)."""

    async def log_horizon(self) -> LogPosition: ...

    async def read_log(
        self, app_id: str, after: LogPosition, filters: LogFilter, limit: int
    ) -> LogRead: ...


class LogNotices(Protocol):
    """The notices that an app's log grew (hookrelay.broker.Notices)."""

    async def follow_log(
        self, on_notice: Callable[[str], None], on_subscribed: Callable[[], None]
    ) -> None: ...


class LiveFeed:
    """The tails of the apps followed through this API process, kept fresh by notices."""

    def __init__(self, events: EventLog, notices: LogNotices, max_streams_per_app: int) -> None:
        self._events = events
        self._notices = notices
        self._max_streams = max_streams_per_app
        self._tails: dict[str, Tail] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.closed = False

    @asynccontextmanager
    async def follow(self, app_id: str, stream: bool = False) -> AsyncIterator[Tail]:
        """Follow an app's log for the duration of the block. A stream counts against the cap
        on streams per app; beyond it, Throttled."""
        if self.closed:
            raise DependencyUnavailable("this server is shutting down; try again")
        self._start()
        tail = self._tails.get(app_id)
        if tail is None:
            tail = self._tails[app_id] = Tail(app_id)
            self._refresh_soon(tail)
        if stream and tail.streams >= self._max_streams:
            raise Throttled(
                f"this app's open streams on this server are at their cap ({self._max_streams})",
                {"max_streams_per_app": self._max_streams},
            )
        tail.readers += 1
        tail.streams += stream
        try:
            yield tail
        finally:
            tail.readers -= 1
            tail.streams -= stream
            tail.idle_since = asyncio.get_running_loop().time()

    async def read(
        self,
        tail: Tail,
        after: LogPosition,
        filters: LogFilter,
        limit: int,
        wait_s: float,
        until: asyncio.Future[None] | None = None,
    ) -> LogRead:
        """Events after `after`: at once if there are any, else as soon as some are committed,
        else none after `wait_s`, or when the feed closes, or when `until` is done (the reader
        has gone)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            page = tail.read_after(after, filters, limit)
            if page is None:  # behind the tail: catch up from Postgres
                page = await self._events.read_log(tail.app_id, after, filters, limit)
            after = page.position
            remaining = deadline - loop.time()
            if page.events or remaining <= 0 or self.closed or (until is not None and until.done()):
                return LogRead(page.events, after)
            await self._wait_past(tail, after, remaining, until)
            if loop.time() >= deadline:
                return LogRead([], after)

    async def _wait_past(
        self,
        tail: Tail,
        position: LogPosition,
        timeout_s: float,
        until: asyncio.Future[None] | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        wakers = [] if until is None else [until]
        while not self.closed and (tail.position is None or tail.position <= position):
            remaining = deadline - loop.time()
            if remaining <= 0 or (until is not None and until.done()):
                return
            # asyncio.wait cancels neither: the tail's future is shared by all its readers.
            await asyncio.wait(
                [tail.moved, *wakers], timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )

    def notice(self, app_id: str) -> None:
        """An app's log grew (or may have): its tail, if followed here, reads again."""
        tail = self._tails.get(app_id)
        if tail is not None:
            self._refresh_soon(tail)

    async def close(self) -> None:
        """Stop: every reader returns what it has, and streams end so clients reconnect."""
        self.closed = True
        for task in self._tasks:
            task.cancel()
        for tail in self._tails.values():
            if tail.refreshing is not None:
                tail.refreshing.cancel()
            tail.wake()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def _start(self) -> None:
        if not self._tasks:
            loop = asyncio.get_running_loop()
            self._tasks = [
                loop.create_task(self._notices.follow_log(self.notice, self._refresh_all)),
                loop.create_task(self._housekeep()),
            ]

    def _refresh_soon(self, tail: Tail) -> None:
        tail.dirty = True
        if tail.refreshing is None and not self.closed:
            tail.refreshing = asyncio.get_running_loop().create_task(self._refresh(tail))

    async def _refresh(self, tail: Tail) -> None:
        """Read the app's log into its tail until nothing more is there to read. Notices that
        come meanwhile only mark it to read once more."""
        loop = asyncio.get_running_loop()
        held_back_wait = HELD_BACK_FIRST_S
        try:
            while tail.dirty and not self.closed:
                tail.dirty = False
                tail.refreshed_at = loop.time()
                try:
                    if tail.position is None:
                        tail.position = tail.floor = await self._events.log_horizon()
                        tail.wake()
                        continue
                    page = await self._events.read_log(
                        tail.app_id, tail.position, ANY_EVENT, TAIL_PAGE
                    )
                except Exception as exc:  # Postgres down: readers wait; try again shortly
                    log.warning("reading the event log failed", app_id=tail.app_id, error=repr(exc))
                    tail.dirty = True
                    await asyncio.sleep(RETRY_S)
                    continue
                tail.advance(page)
                if page.more:  # a page full by count or by bytes: read on at once
                    tail.dirty = True
                elif page.held_back:
                    # Committed events wait behind a transaction still open: look again soon.
                    tail.dirty = True
                    await asyncio.sleep(held_back_wait)
                    held_back_wait = min(held_back_wait * 2, HELD_BACK_MAX_S)
                else:
                    held_back_wait = HELD_BACK_FIRST_S
        finally:
            tail.refreshing = None

    def _refresh_all(self) -> None:
        """Subscribed (again) to the notices: some may have been missed while not subscribed,
        so every tail reads the log."""
        for tail in list(self._tails.values()):
            self._refresh_soon(tail)

    async def _housekeep(self) -> None:
        """Drop tails nobody followed for a while; read the followed ones now and then even
        without a notice."""
        loop = asyncio.get_running_loop()
        while not self.closed:
            await asyncio.sleep(HOUSEKEEPING_S)
            now = loop.time()
            for app_id, tail in list(self._tails.items()):
                if tail.readers == 0 and now - tail.idle_since > TAIL_LINGER_S:
                    if tail.refreshing is not None:
                        tail.refreshing.cancel()
                    del self._tails[app_id]
                elif tail.readers and now - tail.refreshed_at > SAFETY_REFRESH_S:
                    self._refresh_soon(tail)
