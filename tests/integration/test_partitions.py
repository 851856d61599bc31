"""The event log's time partitions on a real Postgres: made ahead, rows in the right ones, dropped
whole once expired (an event's kept while a delivery still names it), the edge of retention
exact, and no foreign key without an index that serves it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from hookrelay.errors import DependencyUnavailable, NotFound
from hookrelay.ids import id_bound
from hookrelay.models import Delivery, DeliveryFilter, Event
from hookrelay.statuses import DeliveryStatus
from hookrelay.storage import Storage
from hookrelay.storage.migrate import migrate
from hookrelay.storage.partitions import LOG_TABLES, MIN_AHEAD_S, Partition

MINUTE_MS = 60_000

# Foreign keys whose referencing columns are not the leading columns of a valid, whole (not
# partial) index on the same table: each delete of a referenced row would scan that table.
FOREIGN_KEYS_WITHOUT_INDEX = """
SELECT c.conrelid::regclass::text AS table_name, c.conname::text AS name
FROM pg_constraint AS c
WHERE c.contype = 'f' AND NOT EXISTS (
    SELECT FROM pg_index AS i
    WHERE i.indrelid = c.conrelid AND i.indpred IS NULL
      AND i.indnkeyatts >= cardinality(c.conkey)
      AND ARRAY(SELECT k FROM unnest((string_to_array(i.indkey::text, ' ')::int2[])
                                     [1:cardinality(c.conkey)]) AS k ORDER BY k)
          = ARRAY(SELECT k FROM unnest(c.conkey) AS k ORDER BY k)
)
ORDER BY 1, 2
"""


def ms_now() -> int:
    return round(time.time() * 1000)


def hex_id(prefix: str, moment_ms: int, tail: str = "0" * 20) -> str:
    return id_bound(prefix, moment_ms) + tail


@pytest.fixture
async def minute_log(empty_db_url: str) -> AsyncIterator[Storage]:
    """A database partitioned by the minute, and storage on it."""
    await migrate(empty_db_url, partition_interval_s=60)
    storage = await Storage.open(empty_db_url, max_size=2)
    yield storage
    await storage.close()


async def seed(
    url: str,
    event_ms: int,
    delivery_ms: int,
    replay_ms: int | None = None,
    status: str = "succeeded",
) -> None:
    """An app, an endpoint, an event made at `event_ms`, its delivery made at `delivery_ms`
    with an attempt and `status`, and (with `replay_ms`) a replay of that delivery made then."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            """
            INSERT INTO apps (id, name) VALUES ('app_1', 'a') ON CONFLICT DO NOTHING;
            INSERT INTO endpoints (id, app_id, url, secret_ciphertext, secret_key_id)
            VALUES ('ep_1', 'app_1', 'https://example.com/', '\\x00', 'k')
            ON CONFLICT DO NOTHING;
            """
        )
        event, delivery = hex_id("evt_", event_ms), hex_id("dlv_", delivery_ms)
        await connection.execute(
            "INSERT INTO events (id, app_id, type, body, created_at)"
            " VALUES ($1, 'app_1', 'job.completed', '{}', now())",
            event,
        )
        deliveries = [(delivery, None)]
        if replay_ms is not None:
            deliveries.append((hex_id("dlv_", replay_ms, "1" * 20), delivery))
        for delivery_id, replay_of in deliveries:
            await connection.execute(
                "INSERT INTO deliveries (id, app_id, event_id, endpoint_id, status, replay_of)"
                " VALUES ($1, 'app_1', $2, 'ep_1', $4, $3)",
                delivery_id,
                event,
                replay_of,
                status,
            )
            await connection.execute(
                "INSERT INTO attempts (delivery_id, attempt_number, started_at, duration_ms)"
                " VALUES ($1, 1, now(), 5)",
                delivery_id,
            )
    finally:
        await connection.close()


async def where_rows_are(url: str) -> dict[str, list[str]]:
    """The partition each row of the log is in, by table."""
    connection = await asyncpg.connect(url)
    try:
        return {
            table: [
                row[0]
                for row in await connection.fetch(
                    f"SELECT tableoid::regclass::text FROM {table} ORDER BY 1"
                )
            ]
            for table, _ in LOG_TABLES
        }
    finally:
        await connection.close()


async def test_every_foreign_key_has_an_index_that_serves_it(db_url: str) -> None:
    connection = await asyncpg.connect(db_url)
    try:
        assert await connection.fetch(FOREIGN_KEYS_WITHOUT_INDEX) == []
        # The check finds one that has none.
        await connection.execute(
            "CREATE TABLE unindexed (app_id text REFERENCES apps (id), n int);"
            "CREATE INDEX unindexed_n_idx ON unindexed (n, app_id);"
        )
        found = await connection.fetch(FOREIGN_KEYS_WITHOUT_INDEX)
        assert [tuple(row) for row in found] == [("unindexed", "unindexed_app_id_fkey")]
    finally:
        await connection.close()


async def test_migrate_makes_the_same_ranges_ahead_in_every_table(minute_log: Storage) -> None:
    now = ms_now()
    ranges = {}
    for table, _ in LOG_TABLES:
        partitions = await minute_log.partitions.of(table)
        assert partitions[0] == Partition(table, f"{table}_first", None, partitions[0].upper_ms)
        assert partitions[-1].upper_ms >= now + MIN_AHEAD_S * 1000 - MINUTE_MS
        later = partitions[1:]
        assert all(p.upper_ms % MINUTE_MS == 0 for p in later)
        assert all(a.upper_ms == b.lower_ms for a, b in zip(partitions, later, strict=False))
        ranges[table] = [(p.lower_ms, p.upper_ms) for p in partitions]
    assert ranges["events"] == ranges["deliveries"] == ranges["attempts"]
    # Asked again at once, there is nothing to make.
    assert await minute_log.partitions.make_ahead(ms_now(), 60) == []
    # Ten minutes on, ten more of each.
    made = await minute_log.partitions.make_ahead(ms_now() + 10 * MINUTE_MS, 60)
    assert len(made) == 3 * 10 or len(made) == 3 * 11  # a minute may turn meanwhile


async def test_rows_are_held_by_the_partition_of_their_time_and_go_with_it(
    minute_log: Storage, empty_db_url: str
) -> None:
    cutover = (await minute_log.partitions.of("events"))[0].upper_ms
    moment = cutover + 2 * MINUTE_MS + 30_000  # in the third minute after the cutover
    replay = moment + 3 * MINUTE_MS
    await seed(empty_db_url, moment, moment, replay)
    minute = moment // MINUTE_MS * MINUTE_MS
    stamp = time.strftime("%Y%m%d_%H%M", time.gmtime(minute / 1000))
    replay_stamp = time.strftime("%Y%m%d_%H%M", time.gmtime(replay // MINUTE_MS * 60))
    assert await where_rows_are(empty_db_url) == {
        "events": [f"events_p{stamp}"],
        "deliveries": sorted([f"deliveries_p{stamp}", f"deliveries_p{replay_stamp}"]),
        "attempts": sorted([f"attempts_p{stamp}", f"attempts_p{replay_stamp}"]),
    }

    # Retention one minute: once the minute after the first rows' has passed, their partitions
    # of deliveries and attempts go, but the event's stays, since the replay still names it.
    retention_s = 60
    dropped = await minute_log.partitions.drop_expired(minute + 2 * MINUTE_MS, retention_s)
    assert f"deliveries_p{stamp}" in dropped and f"attempts_p{stamp}" in dropped
    assert f"events_p{stamp}" not in dropped
    assert {"events_first", "deliveries_first", "attempts_first"} <= set(dropped)
    assert await where_rows_are(empty_db_url) == {
        "events": [f"events_p{stamp}"],
        "deliveries": [f"deliveries_p{replay_stamp}"],
        "attempts": [f"attempts_p{replay_stamp}"],
    }
    # Once the replay has expired too, everything has.
    later = replay // MINUTE_MS * MINUTE_MS + 2 * MINUTE_MS
    dropped = await minute_log.partitions.drop_expired(later, retention_s)
    assert f"events_p{stamp}" in dropped
    assert await where_rows_are(empty_db_url) == {"events": [], "deliveries": [], "attempts": []}
    remaining = [p.lower_ms for p in await minute_log.partitions.of("deliveries")]
    assert all(lower is not None and lower >= later - MINUTE_MS for lower in remaining)


FINISHED = {DeliveryStatus.SUCCEEDED, DeliveryStatus.DEAD, DeliveryStatus.CANCELLED}


@pytest.mark.parametrize("status", list(DeliveryStatus))
async def test_an_event_goes_with_its_partition_when_what_names_it_has_expired_and_finished(
    minute_log: Storage, empty_db_url: str, status: DeliveryStatus
) -> None:
    goes = status in FINISHED
    # An event made in the last milliseconds of a minute has its delivery made in the next one.
    # Once both are older than the retention, the event's partition goes at once, though the
    # delivery's partition still holds newer rows (kept for it, every events partition
    # outlived the retention by one more interval); unless that delivery is not finished yet:
    # its next attempt needs the event.
    cutover = (await minute_log.partitions.of("events"))[0].upper_ms
    minute = cutover + 2 * MINUTE_MS
    await seed(empty_db_url, minute + MINUTE_MS - 10, minute + MINUTE_MS + 10, status=status)
    stamp = time.strftime("%Y%m%d_%H%M", time.gmtime(minute / 1000))
    dropped = await minute_log.partitions.drop_expired(minute + 2 * MINUTE_MS + 30_000, 60)
    assert (f"events_p{stamp}" in dropped) is goes
    rows = await where_rows_are(empty_db_url)
    assert len(rows["events"]) == (0 if goes else 1)
    assert len(rows["deliveries"]) == 1  # hidden from reads until its partition goes


async def test_a_listing_that_looks_in_the_latest_interval_first_gives_the_same_pages(
    minute_log: Storage, empty_db_url: str
) -> None:
    cutover = (await minute_log.partitions.of("events"))[0].upper_ms
    for minute, count in ((1, 4), (2, 2), (3, 3)):
        for n in range(count):
            moment = cutover + minute * MINUTE_MS + 1000 * (n + 1)
            await seed(empty_db_url, moment, moment)
    windowed = await Storage.open(empty_db_url, max_size=2, partition_interval_s=60)
    try:
        cursor = hex_id("dlv_", cutover + 3 * MINUTE_MS + 30_000)
        in_window = DeliveryFilter(since=at(cutover + 3 * MINUTE_MS + 2000))
        before_window = DeliveryFilter(until=at(cutover + 3 * MINUTE_MS))
        queries = 0
        page_of = windowed.deliveries._page

        async def counted(*args: Any) -> list[Delivery]:
            nonlocal queries
            queries += 1
            return await page_of(*args)

        windowed.deliveries._page = counted  # type: ignore[method-assign]
        for filters, before, limit, expected, asked in (
            (DeliveryFilter(), cursor, 2, 2, 1),  # the window alone fills the page
            (DeliveryFilter(), cursor, 5, 5, 2),  # 3 in the window, 2 before it
            (DeliveryFilter(), cursor, 50, 9, 2),  # every one
            (DeliveryFilter(), None, 50, 9, 2),
            (in_window, cursor, 50, 2, 1),  # nothing before the window can match
            (before_window, cursor, 3, 3, 1),  # nothing in it can
            (DeliveryFilter(status="succeeded"), cursor, 4, 4, 2),
        ):
            queries = 0
            page = await windowed.deliveries.list("app_1", filters, before, limit)
            assert len(page) == expected
            assert queries == asked
            assert page == await minute_log.deliveries.list("app_1", filters, before, limit)
    finally:
        await windowed.close()


def at(moment_ms: int) -> datetime:
    return datetime.fromtimestamp(moment_ms / 1000, UTC)


async def test_listings_name_the_newest_replay_whatever_partition_it_is_in(
    minute_log: Storage, empty_db_url: str
) -> None:
    # A page's replays are asked once for the page (newest_replays), in every partition not
    # older than its oldest delivery.
    cutover = (await minute_log.partitions.of("events"))[0].upper_ms
    first, later = cutover + MINUTE_MS + 1000, cutover + 2 * MINUTE_MS + 1000
    await seed(empty_db_url, first, first, later, status="dead")  # a replay a minute later
    await seed(empty_db_url, later + 1000, later + 1000, status="dead")  # never replayed
    original, unreplayed = hex_id("dlv_", first), hex_id("dlv_", later + 1000)
    newest = hex_id("dlv_", cutover + 3 * MINUTE_MS + 1000, "2" * 20)
    connection = await asyncpg.connect(empty_db_url)
    try:
        await connection.execute(
            "INSERT INTO deliveries (id, app_id, event_id, endpoint_id, status, replay_of)"
            " SELECT $1, app_id, event_id, endpoint_id, 'pending', id FROM deliveries"
            " WHERE id = $2",
            newest,
            original,
        )
    finally:
        await connection.close()
    page = await minute_log.deliveries.list("app_1", DeliveryFilter(), None, 50)
    replayed_by = {d.id: d.replayed_by for d in page}
    assert replayed_by[original] == newest
    assert replayed_by[unreplayed] is None
    assert replayed_by[newest] is None  # a replay is never replayed: its original is
    assert (await minute_log.deliveries.get("app_1", original)).replayed_by == newest
    [of_event] = [
        d for d in await minute_log.deliveries.of_event(hex_id("evt_", first)) if d.id == original
    ]
    assert of_event.replayed_by == newest


async def test_a_row_past_the_partitions_made_is_refused_as_unavailable(
    minute_log: Storage,
) -> None:
    far = ms_now() + 3 * 86_400_000
    event = Event(hex_id("evt_", far), "app_1", "job.completed", None, "{}", datetime.now(UTC))
    await seed_app(minute_log)
    with pytest.raises(DependencyUnavailable, match="no partition"):
        await minute_log.events.insert(event)


async def seed_app(storage: Storage) -> None:
    async with storage.db.session() as session:
        await session.run("INSERT INTO apps (id, name) VALUES ('app_1', 'a')")


async def test_reads_leave_out_what_is_older_than_the_retention(
    minute_log: Storage, empty_db_url: str
) -> None:
    # Two events in the first partition, which is not dropped: one made ninety seconds ago,
    # one now. With a retention of a minute, only the second is ever read.
    now = ms_now()
    await seed(empty_db_url, now - 90_000, now - 90_000)
    old = hex_id("evt_", now - 90_000)
    kept = await Storage.open(empty_db_url, max_size=2, retention_s=60)
    try:
        with pytest.raises(NotFound):
            await kept.events.get("app_1", old)
        assert (await minute_log.events.get("app_1", old)).id == old  # no retention: all
    finally:
        await kept.close()


async def test_a_detach_cut_short_is_finished_at_the_next_turn(
    minute_log: Storage, empty_db_url: str
) -> None:
    # A concurrent detach waits for every transaction that may still read the partition; cut
    # short there (its worker stopped, a lock timeout), it leaves the partition half detached.
    reader, detacher = await asyncpg.connect(empty_db_url), await asyncpg.connect(empty_db_url)
    try:
        victim = (await minute_log.partitions.of("deliveries"))[0]
        async with reader.transaction():
            await reader.fetch("SELECT count(*) FROM deliveries")  # a snapshot that may see it
            await detacher.execute("SET lock_timeout = '300ms'")
            with pytest.raises(asyncpg.LockNotAvailableError):
                await detacher.execute(
                    f'ALTER TABLE deliveries DETACH PARTITION "{victim.name}" CONCURRENTLY'
                )
        [pending] = [p for p in await minute_log.partitions.of("deliveries") if p.detaching]
        assert pending.name == victim.name
        # Not expired yet, it stays as it is; once expired, the next turn finishes the detach
        # and drops it.
        assert await minute_log.partitions.drop_expired(victim.upper_ms - 1, 0.001) == []
        dropped = await minute_log.partitions.drop_expired(victim.upper_ms + 60_000, 60)
        assert dropped == ["attempts_first", "deliveries_first", "events_first"]
        assert victim.name not in [p.name for p in await minute_log.partitions.of("deliveries")]
    finally:
        await reader.close()
        await detacher.close()
