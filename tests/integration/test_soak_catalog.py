"""What the soak benchmark reads from Postgres's catalog: rows, bytes, partitions and their
bounds, on today's schema and on time-partitioned tables (built here by hand)."""

from __future__ import annotations

import time

import asyncpg

from hookrelay.bench.soak import psql_path, read_tables
from hookrelay.bench.soak_report import (
    LOG_TABLES,
    TABLES,
    oldest_partition_age_s,
    oldest_partition_end_age_s,
    partition_range_ms,
)
from hookrelay.ids import id_bound, new_id

MINUTE_MS = 60_000


async def test_a_migrated_log_reads_as_partitioned_and_the_keys_as_a_plain_table(
    db_url: str,
) -> None:
    tables = await read_tables(psql_path(), db_url)
    assert set(tables) == set(TABLES)
    for name in LOG_TABLES:
        assert tables[name]["partitioned"] is True
        assert tables[name]["bounds"]  # the migration makes the first partitions
        assert all(partition_range_ms(b) is not None for b in tables[name]["bounds"])
    keys = tables["idempotency_keys"]
    assert (keys["partitioned"], keys["bounds"], keys["oldest_id"]) == (False, [], None)
    for name in TABLES:
        assert tables[name]["rows"] == 0
        assert tables[name]["bytes"] > 0  # an empty table still has its indexes' first pages


async def test_partitioned_tables_read_with_their_partitions_bounds_and_bytes(
    empty_db_url: str,
) -> None:
    base_ms = (int(time.time() * 1000) // MINUTE_MS - 5) * MINUTE_MS  # 5 whole minutes ago
    b0, b1, b2 = (id_bound("evt_", base_ms + n * MINUTE_MS) for n in range(3))
    connection = await asyncpg.connect(empty_db_url)
    try:
        await connection.execute(
            f"""
            CREATE TABLE events (id text PRIMARY KEY, body text) PARTITION BY RANGE (id);
            CREATE TABLE events_0 PARTITION OF events FOR VALUES FROM ('{b0}') TO ('{b1}');
            CREATE TABLE events_1 PARTITION OF events FOR VALUES FROM ('{b1}') TO ('{b2}');
            CREATE TABLE deliveries (id text PRIMARY KEY) PARTITION BY RANGE (id);
            CREATE TABLE deliveries_old PARTITION OF deliveries
                FOR VALUES FROM (MINVALUE) TO ('{id_bound("dlv_", base_ms)}');
            CREATE TABLE deliveries_rest PARTITION OF deliveries DEFAULT;
            CREATE TABLE attempts (id text PRIMARY KEY);
            CREATE TABLE idempotency_keys (app_id text, key text, PRIMARY KEY (app_id, key));
            """
        )
        events = [(new_id("evt_", base_ms + n * 1000), "x" * 2000) for n in range(100)]
        await connection.executemany("INSERT INTO events VALUES ($1, $2)", events)
        await connection.execute("INSERT INTO attempts VALUES ($1)", new_id("att_", base_ms))
    finally:
        await connection.close()

    tables = await read_tables(psql_path(), empty_db_url)

    events_read = tables["events"]
    assert events_read["partitioned"] is True
    assert events_read["rows"] == 100
    assert events_read["oldest_id"] == min(e[0] for e in events)
    assert len(events_read["bounds"]) == 2
    # Bytes are the partitions' (the parent has none): at least the 100 rows of 2 kB each.
    assert events_read["bytes"] > 100 * 2000 / 4  # TOAST may compress the repeated x
    now_ms = base_ms + 5 * MINUTE_MS
    assert oldest_partition_age_s(events_read["bounds"], now_ms) == 300.0
    assert oldest_partition_end_age_s(events_read["bounds"], now_ms) == 240.0
    assert len(tables["deliveries"]["bounds"]) == 2  # MINVALUE and DEFAULT
    assert oldest_partition_age_s(tables["deliveries"]["bounds"], now_ms) == float("inf")
    assert tables["attempts"]["partitioned"] is False
    assert tables["attempts"]["rows"] == 1 and tables["attempts"]["bytes"] > 0
    assert tables["idempotency_keys"]["oldest_id"] is None
