"""The admin benchmark's seed on a real Postgres: COPY into the partitions made for its span, then
the log vacuumed as autovacuum would have vacuumed a log kept for a while."""

from __future__ import annotations

import time

import asyncpg

from hookrelay.bench.admin import ENDPOINTS, seed
from hookrelay.storage import Storage
from hookrelay.storage.migrate import migrate

HOUR_S = 3600.0


async def test_the_seeded_log_is_in_its_partitions_and_vacuumed(empty_db_url: str) -> None:
    # Hourly partitions, as the benchmark's stack migrates with its partition interval.
    await migrate(empty_db_url, partition_interval_s=HOUR_S)
    endpoints = [f"ep_{n}" for n in range(ENDPOINTS)]
    connection = await asyncpg.connect(empty_db_url)
    storage = await Storage.open(empty_db_url, max_size=2)
    try:
        await connection.execute("INSERT INTO apps (id, name) VALUES ('app_1', 'bench')")
        await connection.executemany(
            "INSERT INTO endpoints (id, app_id, url, secret_ciphertext, secret_key_id)"
            " VALUES ($1, 'app_1', 'https://example.com/', '\\x00', 'k')",
            [(endpoint,) for endpoint in endpoints],
        )
        first = await storage.partitions.of("deliveries")
        base_ms = max(round(time.time() * 1000), first[0].upper_ms)
        assert await storage.partitions.make_ahead(base_ms + 3 * round(HOUR_S * 1000), HOUR_S)
        await seed(storage, "app_1", endpoints, 300, base_ms, 3 * round(HOUR_S * 1000))

        holding = await connection.fetch(
            "SELECT tableoid::regclass::text AS partition, count(*) AS rows FROM deliveries"
            " GROUP BY 1 ORDER BY 1"
        )
        assert sum(row["rows"] for row in holding) == 300 * ENDPOINTS
        assert len(holding) >= 3  # spread over the span's partitions
        # Vacuumed: every page of each partition holding rows is marked all-visible (a COPY
        # alone marks none), and the planner has statistics for it.
        for row in holding:
            pages, visible, tuples = await connection.fetchrow(
                "SELECT relpages, relallvisible, reltuples FROM pg_class WHERE oid = $1::regclass",
                row["partition"],
            )
            assert pages > 0 and visible == pages, row["partition"]
            assert tuples == row["rows"], row["partition"]
    finally:
        await storage.close()
        await connection.close()
