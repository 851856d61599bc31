"""Partitioning the log of a live installation: a database of the old schema with a million
deliveries is migrated while the gateway ingests and delivers. Nothing is copied, nothing is
lost, ingest keeps answering, and the old rows stay readable."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import pytest

from hookrelay.storage.migrate import migrate
from hookrelay.storage.sql import migrations
from tests.acceptance.harness import ADMIN_TOKEN, AcceptanceCluster, Client
from tests.acceptance.test_faults import Stream, duplicates, wait_until_all_received
from tests.conftest import server_tempdir
from tests.receiver import Receiver

pytestmark = pytest.mark.acceptance

OLD_SCHEMA = 9  # the last migration before the log was partitioned
# What this version needs beyond the first step of partitioning to serve: the scoped keys of
# 0015 (a column and a table, nothing the partitioning touches). The processes that run while
# a real installation is partitioned are those of the version before (which ran on 0010's
# schema); this test has only this version's, so it applies that migration first.
NEEDED_TO_SERVE = {15}
EVENTS, ENDPOINTS = 250_000, 4  # a million deliveries
# The old schema's log, filled in bulk: events of a day ago, each delivered to four endpoints,
# with an attempt each.
SEED = f"""
INSERT INTO apps (id, name) VALUES ('app_00000000000000000000000000000001', 'old');
INSERT INTO endpoints (id, app_id, url, secret_ciphertext, secret_key_id)
SELECT 'ep_' || lpad(n::text, 32, '0'), 'app_00000000000000000000000000000001',
       'https://example.com/' || n, '\\x00', 'k'
FROM generate_series(1, {ENDPOINTS}) AS n;
INSERT INTO events (id, app_id, type, body, created_at)
SELECT 'evt_' || lpad(to_hex(day_ago + n), 12, '0') || lpad(n::text, 20, '0'),
       'app_00000000000000000000000000000001', 'job.completed', '{{}}', now() - interval '1 day'
FROM generate_series(1, {EVENTS}) AS n,
     (SELECT (extract(epoch FROM now() - interval '1 day') * 1000)::bigint AS day_ago) AS t;
INSERT INTO deliveries (id, app_id, event_id, endpoint_id, status, attempt_count)
SELECT 'dlv_' || substr(ev.id, 5, 12) || lpad(ep.n::text, 4, '0') || substr(ev.id, 21, 16),
       ev.app_id, ev.id, 'ep_' || lpad(ep.n::text, 32, '0'), 'succeeded', 1
FROM events AS ev, generate_series(1, {ENDPOINTS}) AS ep (n);
INSERT INTO attempts (delivery_id, attempt_number, started_at, duration_ms, status_code)
SELECT id, 1, created_at, 5, 200 FROM deliveries WHERE random() < 0.1;
ANALYZE;
"""


@pytest.fixture
async def cluster() -> AsyncIterator[AcceptanceCluster]:
    root = server_tempdir()
    cluster = AcceptanceCluster(root)
    yield cluster
    cluster.close()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def rows(url: str, query: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url)
    try:
        return list(await connection.fetch(query))
    finally:
        await connection.close()


async def test_partitioning_a_live_log_of_a_million_deliveries_loses_nothing(
    cluster: AcceptanceCluster, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    # The old installation: its schema, its million deliveries.
    cluster.database_url = cluster.postgres.start()
    cluster.redis_url = cluster.redis.start()
    await migrate(cluster.database_url, [m for m in migrations() if m.version <= OLD_SCHEMA])
    connection = await asyncpg.connect(cluster.database_url)
    try:
        await connection.execute(SEED)
        [old] = await connection.fetch("SELECT count(*) AS n, min(id) AS first FROM deliveries")
        assert old["n"] == EVENTS * ENDPOINTS
        old_relation = await connection.fetchval("SELECT 'deliveries'::regclass::oid")
    finally:
        await connection.close()
    # The gateway runs on the schema as the first step of partitioning leaves it (0010), and
    # goes on running while the rest is applied.
    first_step = [
        m for m in migrations() if m.version <= OLD_SCHEMA + 1 or m.version in NEEDED_TO_SERVE
    ]
    await migrate(cluster.database_url, first_step)
    await cluster.start_api()
    cluster.start_worker()
    client = Client(session, cluster.url)
    await client.create_app()
    await client.add_endpoint(f"{receiver.url}/hook")

    stream = Stream(client)
    sending = asyncio.create_task(stream.run(rate=100, seconds=12))
    await asyncio.sleep(3)
    started = time.monotonic()
    applied = await migrate(cluster.database_url)
    took_s = time.monotonic() - started
    await sending

    assert applied == [m.name for m in migrations() if m not in first_step]
    assert stream.refused == []
    await wait_until_all_received(receiver, stream.accepted, cluster)
    print(
        f"migrated a log of {old['n']:,} deliveries in {took_s:.1f} s while ingesting:"
        f" {len(stream.accepted)} accepted, {duplicates(receiver)} duplicates"
    )

    # The old table is the first partition, the same relation: its rows were not copied.
    [first] = await rows(
        cluster.database_url,
        "SELECT c.oid, c.relname::text AS name, pg_get_expr(c.relpartbound, c.oid) AS bound"
        " FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'deliveries'::regclass AND c.relname = 'deliveries_first'",
    )
    assert first["oid"] == old_relation and "MINVALUE" in first["bound"]
    assert (await rows(cluster.database_url, "SELECT count(*) FROM deliveries_first"))[0][0] >= (
        EVENTS * ENDPOINTS
    )
    # And still served: an old delivery through the API, by the admin token.
    status, delivery = await client.call(
        "GET",
        f"/v1/apps/app_00000000000000000000000000000001/deliveries/{old['first']}",
        token=ADMIN_TOKEN,
    )
    assert status == 200 and delivery["id"] == old["first"], delivery
