"""The event log's time partitions: made ahead of need, dropped whole once expired.

`events` is partitioned by its id, `deliveries` by its id and `attempts` by its delivery's id
(sql/migrations/0012). Ids begin with the unix millisecond they were made at, so a range of ids is
a range of time. Every table has the same ranges: a partition of each per interval, named after
the UTC time it starts at, and the table as it was before partitioning as its first one, from
the start of time up to the cutover.

What is decided here is read from the catalog, never from partition names: a range is whatever
Postgres says its bounds are. Statements that change the catalog take their locks for at most
LOCK_TIMEOUT_S (a turn that cannot have them tries again at the next), and the ones on a
partitioned table take only locks under which reads and writes of the log go on: a partition is
made as a table of its own and then attached, and detached concurrently before it is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from hookrelay.ids import id_bound
from hookrelay.storage.db import Database, Session

log = structlog.get_logger(__name__)

# (table, the prefix of the ids its ranges are bounds of); dropped in this order, made in reverse.
LOG_TABLES = (("attempts", "dlv_"), ("deliveries", "dlv_"), ("events", "evt_"))
LOCK_TIMEOUT_S = 5
# How far ahead partitions are made: with a worker down for less than this, ingest goes on.
MIN_AHEAD_S = 15 * 60.0
AHEAD_INTERVALS = 2
_BOUND = re.compile(r"FROM \((?:MINVALUE|'[a-z]+_([0-9a-f]{12})')\) TO \('[a-z]+_([0-9a-f]{12})'\)")
_PARTITION_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Partition:
    table: str  # the partitioned table
    name: str
    lower_ms: int | None  # None: from the start of time (the first partition)
    upper_ms: int
    detaching: bool = False  # a concurrent detach began and was interrupted


def parse_bound(expression: str) -> tuple[int | None, int]:
    """The (lower, upper) unix milliseconds of a partition's bound as pg_get_expr shows it."""
    match = _BOUND.search(expression)
    if match is None:
        raise ValueError(f"not a bound of the event log's partitions: {expression!r}")
    lower, upper = match.groups()
    return (None if lower is None else int(lower, 16)), int(upper, 16)


def partition_name(table: str, lower_ms: int) -> str:
    """The name of `table`'s partition that starts at `lower_ms`: the UTC minute it starts at."""
    start = datetime.fromtimestamp(lower_ms / 1000, UTC)
    return f"{table}_p{start:%Y%m%d_%H%M}"


def ranges_to_make(last_upper_ms: int, now_ms: int, interval_ms: int) -> list[tuple[int, int]]:
    """The ranges to add after the last partition's upper bound so that partitions reach
    `now_ms` plus the time ahead. Each new range ends on a multiple of the interval (the first one
    may be shorter, after the cutover or a change of interval); none starts before the last."""
    ahead_ms = max(AHEAD_INTERVALS * interval_ms, int(MIN_AHEAD_S * 1000))
    until_ms = now_ms + ahead_ms
    ranges = []
    lower = last_upper_ms
    while lower < until_ms:
        upper = interval_start(lower, interval_ms) + interval_ms
        ranges.append((lower, upper))
        lower = upper
    return ranges


def interval_start(moment_ms: int, interval_ms: int) -> int:
    """Where the interval that holds `moment_ms` begins: partitions begin on multiples of the
    interval (but the first, at the cutover)."""
    return moment_ms // interval_ms * interval_ms


def expired(partitions: list[Partition], now_ms: int, retention_ms: int) -> list[Partition]:
    """The partitions whose whole range is older than the retention period."""
    cutoff = now_ms - retention_ms
    return [p for p in partitions if p.upper_ms <= cutoff]


def interval_ms(interval_s: float) -> int:
    """The interval in milliseconds: whole minutes (as HOOKRELAY_PARTITION_INTERVAL must be),
    since partitions are named by the minute they start at."""
    if interval_s < 60 or interval_s % 60:
        raise ValueError(f"the partition interval must be whole minutes, not {interval_s}s")
    return round(interval_s * 1000)


class Partitions:
    """The event log's partitions, read from the catalog and changed by the worker's upkeep."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def of(self, table: str) -> list[Partition]:
        """`table`'s partitions, oldest first."""
        async with self.db.session() as session:
            return await _partitions(session, table)

    async def make_ahead(self, now_ms: int, interval_s: float) -> list[str]:
        """Add the partitions that will be needed soon to every table of the log; the names
        of those made."""
        async with self.db.session() as session:
            return await make_ahead(session, now_ms, interval_s)

    async def analyze_current(self, now_ms: int) -> list[str]:
        """Refresh the planner's statistics of the partitions that hold `now_ms` (the names).

        A prepared statement's plan covers every partition, each planned as it was then: one
        made while a partition was still empty reads it from end to end, or through any index,
        and keeps doing so as it fills, until its statistics change. Done just after a
        partition becomes the current one, this has every such plan made again."""
        names = []
        async with self.db.session() as session:
            for table, _ in LOG_TABLES:
                for partition in await _partitions(session, table):
                    if (partition.lower_ms or 0) <= now_ms < partition.upper_ms:
                        await session.run(f'ANALYZE "{partition.name}"')
                        names.append(partition.name)
        return names

    async def drop_expired(self, now_ms: int, retention_s: float) -> list[str]:
        """Detach and drop every partition whose whole range is older than the retention; an
        events partition stays while a delivery kept still names one of its events (a replay
        made late). The names of those dropped."""
        dropped: list[str] = []
        retention_ms = round(retention_s * 1000)
        async with self.db.session() as session:
            await _lock_timeout(session)
            try:
                await _drop_expired(session, now_ms, retention_ms, dropped)
            finally:
                await session.run("RESET lock_timeout")  # pooled connections keep no SET
        for name in dropped:
            log.info("partition dropped", partition=name)
        return dropped


async def _drop_expired(
    session: Session, now_ms: int, retention_ms: int, dropped: list[str]
) -> None:
    for table, _ in LOG_TABLES:
        for partition in expired(await _partitions(session, table), now_ms, retention_ms):
            if partition.detaching:
                # A detach of ours cut short (its worker stopped, a lock timeout): finish it.
                await session.run(
                    f'ALTER TABLE {table} DETACH PARTITION "{partition.name}" FINALIZE'
                )
            elif table == "events" and await session.value(
                "deliveries_name_events_in",
                id_bound("evt_", partition.lower_ms or 0),
                id_bound("evt_", partition.upper_ms),
                id_bound("dlv_", now_ms - retention_ms),
            ):
                continue
            else:
                await session.run(
                    f'ALTER TABLE {table} DETACH PARTITION "{partition.name}" CONCURRENTLY'
                )
            await session.run(f'DROP TABLE "{partition.name}"')
            dropped.append(partition.name)


async def make_ahead(session: Session, now_ms: int, interval_s: float) -> list[str]:
    """Add the partitions that will be needed soon to every table of the log (on `session`,
    which migrate also uses); the names of those made. Nothing on a log not yet partitioned."""
    width_ms = interval_ms(interval_s)
    made: list[str] = []
    for table, prefix in reversed(LOG_TABLES):
        if not await session.value("is_partitioned", table):
            return made
        partitions = await _partitions(session, table)
        last_upper = max(p.upper_ms for p in partitions)
        for lower, upper in ranges_to_make(last_upper, now_ms, width_ms):
            name = partition_name(table, lower)
            assert _PARTITION_NAME.match(name), name
            async with session.transaction():
                await _lock_timeout(session, local=True)
                # Made apart, then attached: attaching locks the parent less than creating as
                # a partition would, and an empty table is checked against its bound at once.
                await session.run(
                    f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
                    " INCLUDING STORAGE)"
                )
                await session.run(
                    f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES"
                    f" FROM ('{id_bound(prefix, lower)}') TO ('{id_bound(prefix, upper)}')"
                )
            made.append(name)
    if made:
        log.info("partitions made", count=len(made), last=made[-1])
    return made


async def _partitions(session: Session, table: str) -> list[Partition]:
    rows = await session.rows("log_partitions", table)
    found = []
    for row in rows:
        lower, upper = parse_bound(row["bound"])
        found.append(Partition(table, row["name"], lower, upper, row["detaching"]))
    return sorted(found, key=lambda p: p.upper_ms)


async def _lock_timeout(session: Session, local: bool = False) -> None:
    scope = "LOCAL " if local else ""
    await session.run(f"SET {scope}lock_timeout = '{LOCK_TIMEOUT_S}s'")
