"""The plans Postgres keeps for the worker's claim and record (rows reached by primary key), and
for bulk replay and listings (replays asked through their index).

A prepared statement's plan is made once and kept (a generic plan), with whatever statistics
the table had then. A claim or record that reached its rows through the due or lease index
scanned every entry there, those of long-finished deliveries included until vacuum, and grew
slower as the table filled.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from hookrelay.sql import queries

STATEMENTS = {
    "claim_deliveries": ("text[], float8", "'{dlv_x}', 60"),
    "record_successes": (
        "text[], integer[], timestamptz[], integer[], integer[], jsonb[], text[]",
        "'{dlv_x}', '{1}', '{2026-01-01T00:00:00Z}', '{3}', '{200}', '{null}', '{ok}'",
    ),
}
SEED = """
INSERT INTO apps (id, name) VALUES ('app_1', 'plans');
INSERT INTO endpoints (id, app_id, url, description, signing, secret_ciphertext,
                       secret_key_id, headers)
VALUES ('ep_1', 'app_1', 'https://example.com/hook', '', 'hmac', '\\x00', 'k', '{}');
INSERT INTO events (id, app_id, type, body, created_at)
SELECT 'evt_' || lpad(n::text, 12, '0'), 'app_1', 'image.ready', '{}', now()
FROM generate_series(1, 3000) AS n;
-- A third each pending, sending and succeeded.
INSERT INTO deliveries (id, app_id, event_id, endpoint_id, status, next_attempt_at, lease_until)
SELECT 'dlv_' || lpad(n::text, 12, '0'), 'app_1', 'evt_' || lpad(n::text, 12, '0'), 'ep_1',
       (ARRAY['pending', 'sending', 'succeeded'])[1 + n % 3], now(),
       CASE WHEN n % 3 = 1 THEN now() + interval '1 minute' END
FROM generate_series(1, 3000) AS n;
ANALYZE;
"""


@pytest.fixture
async def connection(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(db_url)
    try:
        yield connection
    finally:
        await connection.close()


async def generic_plan_scans(connection: asyncpg.Connection, name: str) -> list[dict[str, Any]]:
    """Every scan of `deliveries` in the statement's generic plan."""
    types, args = STATEMENTS[name]
    return await scans_of(connection, name, queries()[name], types, args)


async def scans_of(
    connection: asyncpg.Connection, name: str, sql: str, types: str, args: str
) -> list[dict[str, Any]]:
    """Every scan of `deliveries` in the generic plan of `sql`, run with `args`."""
    await connection.execute(f"PREPARE {name} ({types}) AS {sql}")
    await connection.execute("SET plan_cache_mode = force_generic_plan")
    [row] = await connection.fetch(f"EXPLAIN (FORMAT JSON) EXECUTE {name} ({args})")
    scans: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        if node.get("Relation Name") == "deliveries" and "Scan" in node["Node Type"]:
            scans.append(node)
        for child in node.get("Plans", []):
            walk(child)

    walk(json.loads(row[0])[0]["Plan"])
    return scans


@pytest.mark.parametrize("name", STATEMENTS)
async def test_plans_made_on_an_empty_table_never_use_the_due_or_lease_index(
    connection: asyncpg.Connection, name: str
) -> None:
    scans = await generic_plan_scans(connection, name)
    assert scans
    assert not {s.get("Index Name") for s in scans} & {
        "deliveries_due_idx",
        "deliveries_lease_idx",
    }, scans


@pytest.mark.parametrize("name", STATEMENTS)
async def test_plans_on_a_filled_table_reach_deliveries_by_primary_key_only(
    connection: asyncpg.Connection, name: str
) -> None:
    await connection.execute(SEED)
    scans = await generic_plan_scans(connection, name)
    assert scans
    assert {s.get("Index Name") for s in scans} == {"deliveries_pkey"}, scans


# Bulk replay finds the originals still lost through the indexes that hold only those, and asks
# each one's replays in flight through theirs; the listings ask each delivery's replays through
# the replay index, and find the deliveries through the indexes they always used. Never a scan
# of the whole table. name: (filters, parameter types, arguments, indexes of the deliveries,
# index of their replays).
REPLAY_STATEMENTS = {
    "replay_deliveries": (
        " AND d.endpoint_id = $3 AND d.id >= $4 AND d.status = 'dead'",
        "text, integer, text, text",
        "'app_1', 2000, 'ep_1', 'dlv_000000001000'",
        {"deliveries_lost_endpoint_idx", "deliveries_lost_app_idx"},
        "deliveries_replays_in_flight_idx",
    ),
    "count_deliveries": (
        " AND d.endpoint_id = $2 AND d.status = 'dead'",
        "text, text",
        "'app_1', 'ep_1'",
        {"deliveries_lost_endpoint_idx", "deliveries_lost_app_idx"},
        "deliveries_replays_in_flight_idx",
    ),
    "list_deliveries": (
        " AND d.status = 'dead'",
        "text, integer",
        "'app_1', 50",
        {"deliveries_app_status_idx"},
        "deliveries_replay_of_idx",
    ),
}
REPLAY_SEED = """
INSERT INTO apps (id, name) VALUES ('app_1', 'plans');
INSERT INTO endpoints (id, app_id, url, description, signing, secret_ciphertext,
                       secret_key_id, headers)
VALUES ('ep_1', 'app_1', 'https://example.com/hook', '', 'hmac', '\\x00', 'k', '{}');
INSERT INTO events (id, app_id, type, body, created_at)
SELECT 'evt_' || lpad(n::text, 12, '0'), 'app_1', 'image.ready', '{}', now()
FROM generate_series(1, 20000) AS n;
-- Originals, a third of them dead; a replay (succeeded) of every tenth dead one.
INSERT INTO deliveries (id, app_id, event_id, endpoint_id, status)
SELECT 'dlv_' || lpad(n::text, 12, '0'), 'app_1', 'evt_' || lpad(n::text, 12, '0'), 'ep_1',
       CASE WHEN n % 3 = 0 THEN 'dead' ELSE 'succeeded' END
FROM generate_series(1, 20000) AS n;
INSERT INTO deliveries (id, app_id, event_id, endpoint_id, status, replay_of)
SELECT 'dlv_r' || lpad(n::text, 12, '0'), 'app_1', 'evt_' || lpad(n::text, 12, '0'), 'ep_1',
       'succeeded', 'dlv_' || lpad(n::text, 12, '0')
FROM generate_series(30, 20000, 30) AS n;
ANALYZE;
"""


def bulk_replay_sql(name: str, filters: str) -> str:
    """A bulk replay's query as the store runs it when it leaves out what was replayed."""
    return queries()[name].replace("{filters}", filters).replace("{include_replayed}", "false")


@pytest.mark.parametrize("name", REPLAY_STATEMENTS)
async def test_replays_are_asked_through_the_replay_index_never_by_a_table_scan(
    connection: asyncpg.Connection, name: str
) -> None:
    await connection.execute(REPLAY_SEED)
    filters, types, args, indexes, replay_index = REPLAY_STATEMENTS[name]
    scans = await scans_of(connection, name, bulk_replay_sql(name, filters), types, args)
    originals = [scan for scan in scans if scan.get("Index Name") != replay_index]
    assert len(originals) < len(scans), scans  # the replays were asked through their index
    assert originals, scans
    assert {scan.get("Index Name") for scan in originals} <= indexes, scans


# What a bulk replay costs grows with what is still lost, not with what was recovered: most of
# a long-lived app's dead deliveries were recovered long ago. Each replay is recorded as the
# worker records it, which marks its original recovered.
ORIGINALS, LOST = 20000, 100
RECOVERED_SEED = f"""
INSERT INTO apps (id, name) VALUES ('app_1', 'plans');
INSERT INTO endpoints (id, app_id, url, description, signing, secret_ciphertext,
                       secret_key_id, headers)
VALUES ('ep_1', 'app_1', 'https://example.com/hook', '', 'hmac', '\\x00', 'k', '{{}}');
INSERT INTO events (id, app_id, type, body, created_at)
SELECT 'evt_' || lpad(n::text, 12, '0'), 'app_1', 'image.ready', '{{}}', now()
FROM generate_series(1, {ORIGINALS}) AS n;
INSERT INTO deliveries (id, app_id, event_id, endpoint_id, status, attempt_count)
SELECT 'dlv_' || lpad(n::text, 12, '0'), 'app_1', 'evt_' || lpad(n::text, 12, '0'), 'ep_1',
       'dead', 3
FROM generate_series(1, {ORIGINALS}) AS n;
-- A replay of each but the last {LOST}, its first attempt under way.
INSERT INTO deliveries (id, app_id, event_id, endpoint_id, status, attempt_count, replay_of)
SELECT 'dlv_r' || lpad(n::text, 12, '0'), 'app_1', 'evt_' || lpad(n::text, 12, '0'), 'ep_1',
       'sending', 1, 'dlv_' || lpad(n::text, 12, '0')
FROM generate_series(1, {ORIGINALS - LOST}) AS n;
"""
# The dry run of a bulk replay and of a recover, and their first batch: (filters, parameter
# types, arguments).
LOST_STATEMENTS = {
    "count_deliveries": (" AND d.status = 'dead'", "text", "'app_1'"),
    "replay_deliveries": (" AND d.status = 'dead'", "text, integer", "'app_1', 1000"),
    "count_deliveries_of_endpoint": (
        " AND d.endpoint_id = $2 AND d.id >= $3 AND d.status = 'dead'",
        "text, text, text",
        "'app_1', 'ep_1', 'dlv_'",
    ),
    "replay_deliveries_of_endpoint": (
        " AND d.endpoint_id = $3 AND d.id >= $4 AND d.status = 'dead'",
        "text, integer, text, text",
        "'app_1', 1000, 'ep_1', 'dlv_'",
    ),
}


@pytest.mark.parametrize("statement", LOST_STATEMENTS)
async def test_finding_what_is_still_lost_reads_only_what_is_still_lost(
    connection: asyncpg.Connection, statement: str
) -> None:
    await connection.execute(RECOVERED_SEED)
    replays = [f"dlv_r{n:012d}" for n in range(1, ORIGINALS - LOST + 1)]
    recorded = await connection.fetchval(
        queries()["record_successes"],
        replays,
        [1] * len(replays),
        [datetime.now(UTC)] * len(replays),
        [3] * len(replays),
        [200] * len(replays),
        [None] * len(replays),
        ["ok"] * len(replays),
    )
    assert len(recorded) == len(replays)
    await connection.execute("VACUUM ANALYZE deliveries")  # as autovacuum does after a while
    name = statement.removesuffix("_of_endpoint")
    filters, types, args = LOST_STATEMENTS[statement]
    await connection.execute(f"PREPARE {name} ({types}) AS {bulk_replay_sql(name, filters)}")
    await connection.execute("SET plan_cache_mode = force_generic_plan")
    [row] = await connection.fetch(
        f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE {name} ({args})"
    )
    plan = json.loads(row[0])[0]["Plan"]
    nodes = list(walk(plan))

    if name == "count_deliveries":
        assert (await connection.fetchrow(f"EXECUTE {name} ({args})"))["matched"] == LOST
    else:  # EXPLAIN ANALYZE made the replays
        made = "SELECT count(*) FROM deliveries WHERE replay_of IS NOT NULL AND status = 'pending'"
        assert await connection.fetchval(made) == LOST
    removed = sum(n.get("Rows Removed by Filter", 0) for n in nodes)
    probes = sum(n["Actual Loops"] for n in nodes if n["Node Type"].startswith("Index"))
    buffers = plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]
    # About one probe of each index per delivery still lost; nothing for those recovered.
    assert removed < LOST, plan
    assert probes < 5 * LOST, plan
    assert buffers < 40 * LOST, plan  # (each replay made writes a few index pages)


def walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A plan's node and every node under it."""
    yield node
    for child in node.get("Plans", []):
        yield from walk(child)
