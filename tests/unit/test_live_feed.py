"""The live feed's decisions on an in-memory log and notices: who reads Postgres and when,
who waits, who is woken, and what closing does. No servers; each test takes milliseconds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from hookrelay.errors import DependencyUnavailable, Throttled
from hookrelay.live import feed as feed_module
from hookrelay.live.feed import LiveFeed, Tail
from hookrelay.models import LOG_START, Event, LogFilter, LogPosition, LogRead

APP = "app_1"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
ANY = LogFilter()


@dataclass
class FakeLog:
    """An app's log in commit order; `reads` counts the reads of the log itself."""

    events: list[Event] = field(default_factory=list)
    horizon_tx: int = 1
    reads: int = 0
    fail_next: int = 0
    held_back_next: int = 0

    def commit(self, event_type: str = "image.ready") -> Event:
        event = Event(
            f"evt_{len(self.events):04d}", APP, event_type, None, "{}", NOW, self.horizon_tx
        )
        self.events.append(event)
        self.horizon_tx += 1
        return event

    async def log_horizon(self) -> LogPosition:
        return (self.horizon_tx, "")

    async def read_log(
        self, app_id: str, after: LogPosition, filters: LogFilter, limit: int
    ) -> LogRead:
        self.reads += 1
        if self.fail_next:
            self.fail_next -= 1
            raise DependencyUnavailable("postgres is unreachable")
        held_back = self.held_back_next > 0
        self.held_back_next -= held_back
        found = [e for e in self.events if e.app_id == app_id and e.position > after]
        found = [e for e in found if filters.matches(e)][:limit]
        full = len(found) == limit
        position = found[-1].position if full else max(after, (self.horizon_tx, ""))
        return LogRead(found, position, held_back=held_back, more=full)


@dataclass
class FakeNotices:
    """Notices as Redis would deliver them: `subscribed` runs once following starts."""

    resubscribe: Callable[[], None] | None = None  # what Redis's next confirmation calls

    async def follow_log(
        self, on_notice: Callable[[str], None], on_subscribed: Callable[[], None]
    ) -> None:
        self.resubscribe = on_subscribed
        on_subscribed()
        await asyncio.Event().wait()  # until cancelled


async def settle() -> None:
    """Let the feed's refresh tasks run to where they wait."""
    for _ in range(20):
        await asyncio.sleep(0)


@asynccontextmanager
async def following(feed: LiveFeed) -> AsyncIterator[tuple[Tail, LogPosition]]:
    """Follow the app once its tail is primed; the tail and where a new reader starts."""
    async with feed.follow(APP) as tail:
        await settle()
        assert tail.position is not None
        yield tail, tail.position


@pytest.fixture
def log() -> FakeLog:
    return FakeLog()


@pytest.fixture
def notices() -> FakeNotices:
    return FakeNotices()


@pytest.fixture
async def feed(log: FakeLog, notices: FakeNotices) -> AsyncIterator[LiveFeed]:
    live = LiveFeed(log, notices, max_streams_per_app=2)
    yield live
    await live.close()


async def test_a_new_follower_starts_at_the_horizon_without_reading_the_log(
    feed: LiveFeed, log: FakeLog
) -> None:
    log.commit()
    async with feed.follow(APP) as tail:
        await settle()
        assert tail.position == (log.horizon_tx, "")
        assert log.reads == 0


async def test_a_waiting_reader_gets_an_event_as_soon_as_a_notice_says_it_committed(
    feed: LiveFeed, log: FakeLog
) -> None:
    async with following(feed) as (tail, start):
        reading = asyncio.create_task(feed.read(tail, start, ANY, 10, wait_s=5))
        await settle()
        assert not reading.done()
        event = log.commit()
        feed.notice(APP)
        page = await asyncio.wait_for(reading, 1)
        assert [e.id for e in page.events] == [event.id]
        assert page.position >= event.position


async def test_many_waiting_readers_cost_one_read_of_the_log_per_notice(
    feed: LiveFeed, log: FakeLog
) -> None:
    async with following(feed) as (tail, start):
        readers = [asyncio.create_task(feed.read(tail, start, ANY, 10, 5)) for _ in range(50)]
        await settle()
        reads_before = log.reads
        log.commit()
        feed.notice(APP)
        pages = await asyncio.wait_for(asyncio.gather(*readers), 1)
        assert all(len(page.events) == 1 for page in pages)
        assert log.reads - reads_before == 1


async def test_a_read_with_nothing_new_returns_empty_at_its_deadline(
    feed: LiveFeed, log: FakeLog
) -> None:
    async with following(feed) as (tail, start):
        page = await feed.read(tail, start, ANY, 10, wait_s=0.05)
        assert page.events == []
        assert page.position == start


async def test_a_waiting_reader_returns_as_soon_as_its_client_has_gone(
    feed: LiveFeed, log: FakeLog
) -> None:
    async with following(feed) as (tail, start):
        gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        readers = [asyncio.create_task(feed.read(tail, start, ANY, 10, 5, gone))]
        readers.append(asyncio.create_task(feed.read(tail, start, ANY, 10, 5)))  # another's
        await settle()
        gone.set_result(None)
        page = await asyncio.wait_for(readers[0], 1)
        assert page.events == []
        assert page.position == start
        await settle()
        assert not readers[1].done()  # the shared wait is not cancelled for the others
        event = log.commit()
        feed.notice(APP)
        assert [e.id for e in (await asyncio.wait_for(readers[1], 1)).events] == [event.id]


async def test_a_reader_behind_the_tail_reads_the_log_itself(feed: LiveFeed, log: FakeLog) -> None:
    old = log.commit()
    async with feed.follow(APP) as tail:
        await settle()
        reads_before = log.reads
        page = await feed.read(tail, LOG_START, ANY, 10, wait_s=0)
        assert [e.id for e in page.events] == [old.id]
        assert log.reads == reads_before + 1


async def test_a_filter_skips_other_types_and_the_position_still_moves_past_them(
    feed: LiveFeed, log: FakeLog
) -> None:
    async with following(feed) as (tail, start):
        log.commit("image.ready")
        wanted = log.commit("job.completed")
        feed.notice(APP)
        await settle()
        page = await feed.read(tail, start, LogFilter(types=frozenset({"job.completed"})), 10, 0)
        assert [e.id for e in page.events] == [wanted.id]
        assert page.position >= wanted.position


async def test_streams_beyond_the_cap_of_an_app_are_throttled(feed: LiveFeed) -> None:
    async with feed.follow(APP, stream=True), feed.follow(APP, stream=True):
        with pytest.raises(Throttled):
            async with feed.follow(APP, stream=True):
                pass
        async with feed.follow(APP):  # a long-poll is not a stream
            pass
    async with feed.follow(APP, stream=True):  # the closed ones gave their places back
        pass


async def test_events_held_back_by_an_open_transaction_are_read_again_soon(
    feed: LiveFeed, log: FakeLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed_module, "HELD_BACK_FIRST_S", 0.001)
    async with feed.follow(APP) as tail:
        await settle()
        log.held_back_next = 2
        event = log.commit()
        feed.notice(APP)
        for _ in range(200):
            await asyncio.sleep(0.002)
            if tail.refreshing is None:
                break
        assert tail.refreshing is None and not tail.dirty  # done: nothing left held back
        assert log.reads == 3  # two held-back reads, then one that saw everything
        assert [e.id for e in tail.events] == [event.id]


async def test_a_failed_read_of_the_log_is_tried_again(
    feed: LiveFeed, log: FakeLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed_module, "RETRY_S", 0.001)
    async with following(feed) as (tail, start):
        log.fail_next = 2
        event = log.commit()
        feed.notice(APP)
        page = await asyncio.wait_for(feed.read(tail, start, ANY, 10, wait_s=2), 1)
        assert [e.id for e in page.events] == [event.id]
        assert log.reads == 3


async def test_closing_wakes_every_reader_and_refuses_new_followers(
    feed: LiveFeed, log: FakeLog
) -> None:
    async with following(feed) as (tail, start):
        reading = asyncio.create_task(feed.read(tail, start, ANY, 10, wait_s=30))
        await settle()
        await feed.close()
        page = await asyncio.wait_for(reading, 1)
        assert page.events == []
    with pytest.raises(DependencyUnavailable):
        async with feed.follow(APP):
            pass


async def test_a_resubscription_makes_every_tail_read_again(
    feed: LiveFeed, log: FakeLog, notices: FakeNotices
) -> None:
    async with following(feed) as (tail, start):
        event = log.commit()  # its notice was lost while not subscribed
        reads_before = log.reads
        assert notices.resubscribe is not None
        notices.resubscribe()  # Redis confirms the subscription again
        await settle()
        assert log.reads == reads_before + 1
        page = await feed.read(tail, start, ANY, 10, wait_s=0)
        assert [e.id for e in page.events] == [event.id]
