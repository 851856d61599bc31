"""The plans Postgres keeps for the worker's claim and record (rows reached by primary key), and
the plans it makes for bulk replay and listings (replays asked through their index).

A prepared statement's plan may be made once and kept (a generic plan), with whatever
statistics the table had then. A claim or record that reached its rows through the due or lease
index scanned every entry there, those of long-finished deliveries included until vacuum, and
grew slower as the table filled. Postgres keeps a generic plan only while it seems no dearer
than one made for the call's arguments, which over a log of many partitions it is not: the
worker's statements are then planned per call, and must plan only the partitions their ids are
in. Both kinds of plan are checked. Listings and bulk replays take their filters as parameters that
may be null, and storage has them planned for each call's arguments (a custom plan): their
plans are checked as such.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from hookrelay.models import LOG_START, AttemptFilter, DeliveryFilter, EventFilter, LogFilter
from hookrelay.settings import Settings
from hookrelay.storage import Storage
from hookrelay.storage.maintenance import SWEEP_START
from hookrelay.storage.sql import queries
from hookrelay.worker.resources import WorkerResources

STATEMENTS = {
    "claim_deliveries": ("text[], float8", "'{dlv_x}', 60"),
    "record_successes": (
        "text[], integer[], timestamptz[], integer[], integer[], jsonb[], text[], text[]",
        "'{dlv_x}', '{1}', '{2026-01-01T00:00:00Z}', '{3}', '{200}', '{null}', '{ok}', NULL",
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
# The partition the seeds' rows are in (their ids are of 1970): the other partitions, empty,
# are read as the planner likes until they fill (see the test after the next).
FILLED = "deliveries_first"


@pytest.fixture
async def connection(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(db_url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def custom_plan_connection(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection on which a prepared statement is planned for each call's arguments, as
    storage has its listings and bulk replays planned."""
    connection = await asyncpg.connect(db_url)
    await connection.execute("SET plan_cache_mode = force_custom_plan")
    try:
        yield connection
    finally:
        await connection.close()


async def generic_plan_scans(connection: asyncpg.Connection, name: str) -> list[dict[str, Any]]:
    """Every scan of `deliveries` in the statement's generic plan."""
    types, args = STATEMENTS[name]
    return await scans_of(connection, name, queries()[name], types, args)


async def scans_of(
    connection: asyncpg.Connection,
    name: str,
    sql: str,
    types: str,
    args: str,
    generic: bool = True,
) -> list[dict[str, Any]]:
    """Every scan of `deliveries` in the plan of `sql` run with `args`: its generic plan, or
    (not `generic`) the plan the connection makes as it is set to."""
    await connection.execute(f"PREPARE {name} ({types}) AS {sql}")
    if generic:
        await connection.execute("SET plan_cache_mode = force_generic_plan")
    [row] = await connection.fetch(f"EXPLAIN (FORMAT JSON) EXECUTE {name} ({args})")
    roots = await partition_roots(connection)
    scans: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        if roots.get(node.get("Relation Name")) == "deliveries" and "Scan" in node["Node Type"]:
            # A partition's scan, named as the partitioned table and index it belongs to.
            index = node.get("Index Name")
            scans.append(node | ({"Index Name": roots[index]} if index else {}))
        for child in node.get("Plans", []):
            walk(child)

    walk(json.loads(row[0])[0]["Plan"])
    return scans


async def executed_scans(
    connection: asyncpg.Connection, name: str, sql: str, types: str, args: str
) -> list[dict[str, Any]]:
    """Every scan of `deliveries` in the plans that running `sql` with `args` executes, with how
    often each ran: its own and those of the statements of the functions it calls (a listing
    asks its page's replays through one, planned once for any argument)."""
    plans: list[dict[str, Any]] = []
    connection.add_log_listener(
        lambda _, message: plans.append(json.loads(message.message.split("\n", 1)[1]))
    )
    await connection.execute(
        "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0;"
        " SET auto_explain.log_nested_statements = on; SET auto_explain.log_format = json;"
        " SET auto_explain.log_analyze = on;"
        " SET auto_explain.log_level = notice"
    )
    await connection.execute(f"PREPARE {name} ({types}) AS {sql}")
    await connection.execute(f"EXECUTE {name} ({args})")
    await connection.execute("SET auto_explain.log_min_duration = -1")
    roots = await partition_roots(connection)
    return [
        node | ({"Index Name": roots[node["Index Name"]]} if "Index Name" in node else {})
        for plan in plans
        for node in walk(plan["Plan"])
        if roots.get(node.get("Relation Name")) == "deliveries" and "Scan" in node["Node Type"]
    ]


async def partition_roots(connection: asyncpg.Connection) -> dict[str, str]:
    """Each table and index of the log's partitions (and each partitioned one), by name: the
    name of the partitioned table or index it belongs to."""
    rows = await connection.fetch(
        "SELECT c.relname::text, coalesce(pg_partition_root(c.oid), c.oid)::regclass::text"
        " FROM pg_class AS c WHERE c.relkind IN ('r', 'p', 'i', 'I')"
        " AND c.relnamespace = 'public'::regnamespace"
    )
    return dict(rows)


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
    filled = [s for s in scans if s["Relation Name"] == FILLED]
    assert filled
    assert {s.get("Index Name") for s in filled} == {"deliveries_pkey"}, scans


async def test_a_partition_that_filled_after_the_plan_is_read_by_primary_key_once_analyzed(
    db_url: str,
) -> None:
    # The plan is made while the current partition is still empty, as it is just after it
    # becomes the current one: until its statistics change, that plan reads it whole. The
    # worker refreshes them just after each boundary, and Postgres then plans the statement
    # again.
    storage = await Storage.open(db_url, max_size=1)
    connection = await asyncpg.connect(db_url)
    try:
        types, args = STATEMENTS["claim_deliveries"]
        sql = queries()["claim_deliveries"]
        await connection.execute(f"PREPARE claim ({types}) AS {sql}")
        await connection.execute("SET plan_cache_mode = force_generic_plan")
        explain = f"EXPLAIN (FORMAT JSON) EXECUTE claim ({args})"
        await connection.fetch(explain)  # the plan is made now
        now = round(time.time() * 1000)
        [current] = [
            p.name
            for p in await storage.partitions.of("deliveries")
            if (p.lower_ms or 0) <= now < p.upper_ms
        ]
        await connection.execute(
            SEED.replace("'evt_' || lpad(n::text, 12, '0')", "hookrelay_id('evt_')")
            .replace("'dlv_' || lpad(n::text, 12, '0')", "hookrelay_id('dlv_')")
            .replace("ANALYZE;", "")
        )

        async def current_scans() -> set[str | None]:
            [row] = await connection.fetch(explain)
            roots = await partition_roots(connection)
            return {
                roots.get(node.get("Index Name", ""))
                for node in walk(json.loads(row[0])[0]["Plan"])
                if node.get("Relation Name") == current
            }

        assert await current_scans() != {"deliveries_pkey"}  # read whole, or by another index
        assert current in await storage.partitions.analyze_current(round(time.time() * 1000))
        assert await current_scans() == {"deliveries_pkey"}
    finally:
        await connection.close()
        await storage.close()


# Bulk replay finds the originals still lost through the indexes that hold only those, and asks
# each one's replays in flight through theirs; the listings ask their page's replays through
# the replay index, once for the page, and find the deliveries through the indexes they always
# used. Never a scan of the whole table. statement: (named query, its arguments with NULL for
# the filters left out, indexes of the deliveries, index of their replays). replay_deliveries's
# arguments: app, batch size (NULL: count), cursor, status, endpoint, event, event type, job,
# since, until, include_replayed; list_deliveries's: the same up to until, the page size for
# the batch size.
REPLAY_STATEMENTS = {
    "replay_deliveries": (
        "replay_deliveries",
        "'app_1', 2000, NULL, 'dead', 'ep_1', NULL, NULL, NULL, 'dlv_000000001000', NULL, false",
        {"deliveries_lost_endpoint_idx", "deliveries_lost_app_idx"},
        "deliveries_replays_in_flight_idx",
    ),
    "count_deliveries": (
        "replay_deliveries",
        "'app_1', NULL, NULL, 'dead', 'ep_1', NULL, NULL, NULL, NULL, NULL, false",
        {"deliveries_lost_endpoint_idx", "deliveries_lost_app_idx"},
        "deliveries_replays_in_flight_idx",
    ),
    "list_deliveries": (
        "list_deliveries",
        "'app_1', 50, NULL, 'dead', NULL, NULL, NULL, NULL, NULL, NULL, false",
        {"deliveries_app_status_idx"},
        "deliveries_replay_of_idx",
    ),
    "list_lost_deliveries": (
        "list_deliveries",
        "'app_1', 50, NULL, 'dead', NULL, NULL, NULL, NULL, NULL, NULL, true",
        {"deliveries_lost_app_idx"},
        "deliveries_replay_of_idx",
    ),
}
# The parameter types of the filtered queries.
FILTERS = "text, text, text, text, text, text, text"
TYPES = {
    "replay_deliveries": f"text, integer, text, {FILTERS}, boolean",
    "list_deliveries": f"text, integer, text, {FILTERS}, boolean",
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
SELECT 'dlv_0001' || lpad(n::text, 8, '0'), 'app_1', 'evt_' || lpad(n::text, 12, '0'), 'ep_1',
       'succeeded', 'dlv_' || lpad(n::text, 12, '0')
FROM generate_series(30, 20000, 30) AS n;
ANALYZE;
"""


@pytest.mark.parametrize("statement", REPLAY_STATEMENTS)
async def test_replays_are_asked_through_the_replay_index_never_by_a_table_scan(
    custom_plan_connection: asyncpg.Connection, statement: str
) -> None:
    connection = custom_plan_connection
    await connection.execute(REPLAY_SEED)
    name, args, indexes, replay_index = REPLAY_STATEMENTS[statement]
    scans = await executed_scans(connection, name, queries()[name], TYPES[name], args)
    scans = [scan for scan in scans if scan["Relation Name"] == FILLED]
    originals = [scan for scan in scans if scan.get("Index Name") != replay_index]
    replays = [scan for scan in scans if scan.get("Index Name") == replay_index]
    assert replays, scans  # the replays were asked through their index
    if name == "list_deliveries":  # once for the whole page (a bulk replay asks per original)
        assert [scan["Actual Loops"] for scan in replays] == [1], replays
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
SELECT 'dlv_0001' || lpad(n::text, 8, '0'), 'app_1', 'evt_' || lpad(n::text, 12, '0'), 'ep_1',
       'sending', 1, 'dlv_' || lpad(n::text, 12, '0')
FROM generate_series(1, {ORIGINALS - LOST}) AS n;
"""
# The dry run of a bulk replay and of a recover, and their first batch: the arguments of
# replay_deliveries (as in REPLAY_STATEMENTS).
LOST_STATEMENTS = {
    "count_deliveries": "'app_1', NULL, NULL, 'dead', NULL, NULL, NULL, NULL, NULL, NULL, false",
    "replay_deliveries": "'app_1', 1000, NULL, 'dead', NULL, NULL, NULL, NULL, NULL, NULL, false",
    "count_deliveries_of_endpoint": (
        "'app_1', NULL, NULL, 'dead', 'ep_1', NULL, NULL, NULL, 'dlv_', NULL, false"
    ),
    "replay_deliveries_of_endpoint": (
        "'app_1', 1000, NULL, 'dead', 'ep_1', NULL, NULL, NULL, 'dlv_', NULL, false"
    ),
}


@pytest.mark.parametrize("statement", LOST_STATEMENTS)
async def test_finding_what_is_still_lost_reads_only_what_is_still_lost(
    custom_plan_connection: asyncpg.Connection, statement: str
) -> None:
    connection = custom_plan_connection
    await connection.execute(RECOVERED_SEED)
    replays = [f"dlv_0001{n:08d}" for n in range(1, ORIGINALS - LOST + 1)]
    recorded = await connection.fetchval(
        queries()["record_successes"],
        replays,
        [1] * len(replays),
        [datetime.now(UTC)] * len(replays),
        [3] * len(replays),
        [200] * len(replays),
        [None] * len(replays),
        ["ok"] * len(replays),
        await connection.fetchval(
            "SELECT array_agg(DISTINCT replay_of ORDER BY replay_of) FROM deliveries"
            " WHERE id = ANY ($1)",
            replays,
        ),
    )
    assert len(recorded) == len(replays)
    await connection.execute("VACUUM ANALYZE deliveries")  # as autovacuum does after a while
    name = statement.removesuffix("_of_endpoint")
    args = LOST_STATEMENTS[statement]
    sql = queries()["replay_deliveries"]
    await connection.execute(f"PREPARE replay ({TYPES['replay_deliveries']}) AS {sql}")
    [row] = await connection.fetch(
        f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE replay ({args})"
    )
    plan = json.loads(row[0])[0]["Plan"]
    nodes = list(walk(plan))

    if name == "count_deliveries":
        assert (await connection.fetchrow(f"EXECUTE replay ({args})"))["matched"] == LOST
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


# The delivery path's statements, with the ids of SEED's rows (all in the first partitions):
# (types, arguments).
RECORD_ATTEMPT_TYPES = (
    "text, integer, timestamptz, integer, integer, text, text, jsonb, text, text, timestamptz,"
    " boolean, boolean, integer, float8, text"
)
DELIVERY_PATH = {
    "claim_deliveries": ("text[], float8", "'{dlv_000000000001,dlv_000000000004}', 60"),
    "claimed_events": ("text[]", "'{evt_000000000001,evt_000000000004}'"),
    "record_successes": (
        STATEMENTS["record_successes"][0],
        "'{dlv_000000000002}', '{1}', '{2026-01-01T00:00:00Z}', '{3}', '{200}', '{null}',"
        " '{ok}', NULL",
    ),
    "record_successes_of_a_replay": (
        STATEMENTS["record_successes"][0],
        "'{dlv_000000000002}', '{1}', '{2026-01-01T00:00:00Z}', '{3}', '{200}', '{null}',"
        " '{ok}', '{dlv_000000000005}'",
    ),
    "record_attempt": (
        RECORD_ATTEMPT_TYPES,
        "'dlv_000000000002', 1, now(), 3, 500, NULL, NULL, NULL, NULL, 'retrying', now(),"
        " false, false, 20, 432000, NULL",
    ),
    "record_attempt_of_a_replay": (
        RECORD_ATTEMPT_TYPES,
        "'dlv_000000000002', 1, now(), 3, 200, NULL, NULL, NULL, NULL, 'succeeded', NULL,"
        " true, false, 20, 432000, 'dlv_000000000005'",
    ),
}


@pytest.mark.parametrize("name", DELIVERY_PATH)
async def test_the_delivery_path_plans_only_the_partitions_its_rows_are_in(
    db_url: str, custom_plan_connection: asyncpg.Connection, name: str
) -> None:
    # The worker's statements are planned for each call's ids (Postgres finds that cheaper than
    # a generic plan over every partition). A plan that reaches a partition its ids cannot be
    # in plans it too: over a month of daily partitions, that planning cost more than the rest
    # of the claim (the events it joined) and of the record (the originals it marks recovered).
    connection = custom_plan_connection
    await connection.execute(SEED)
    storage = await Storage.open(db_url, max_size=1)
    try:
        later = round(time.time() * 1000) + 10 * 86_400_000
        made = await storage.partitions.make_ahead(later, 86_400.0)  # ten more days
    finally:
        await storage.close()
    assert len(made) >= 3 * 10  # ten days more of each table of the log
    types, args = DELIVERY_PATH[name]
    sql = queries()[name.removesuffix("_of_a_replay")]
    await connection.execute(f"PREPARE statement ({types}) AS {sql}")
    [row] = await connection.fetch(f"EXPLAIN (FORMAT JSON) EXECUTE statement ({args})")
    roots = await partition_roots(connection)
    # Those it reads, and those it may write (an UPDATE names each partition it may write
    # under its ModifyTable node, even one that a condition folded to false leaves unread).
    tables = [
        table
        for node in walk(json.loads(row[0])[0]["Plan"])
        for table in [node, *node.get("Target Tables", [])]
    ]
    partitions = {
        table["Relation Name"]
        for table in tables
        if table.get("Relation Name") not in (None, roots.get(table.get("Relation Name")))
    }
    assert partitions
    assert partitions <= {"events_first", "deliveries_first", "attempts_first"}, partitions


def walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A plan's node and every node under it."""
    yield node
    for child in node.get("Plans", []):
        yield from walk(child)


async def test_listings_and_bulk_replays_are_planned_for_each_call(db_url: str) -> None:
    """Reads run on connections that plan every call, and a replay's batch is prepared unnamed
    (planned for its call); the hot statements keep their plans."""
    storage = await Storage.open(db_url, max_size=2)
    calls = 8  # more than the 5 custom plans Postgres makes before it may keep a generic one
    try:
        for _ in range(calls):
            await storage.deliveries.list("app_1", DeliveryFilter(status="dead"), None, 50)
            await storage.deliveries.count("app_1", DeliveryFilter(status="dead"), False)
            await storage.deliveries.replay_batch("app_1", DeliveryFilter(), False, None, 10)
            await storage.deliveries.list_attempts("app_1", AttemptFilter(), None, 50)
            await storage.events.list("app_1", EventFilter(type="a.b"), None, 50)
            await storage.events.read_log("app_1", LOG_START, LogFilter(job_id="j"), 50)
            await storage.deliveries.claim(["dlv_1"], 60.0)
        plans = {}
        for pool in (storage.db.custom_plan_pool, storage.db.pool):
            async with pool.acquire() as connection:
                mode = await connection.fetchval("SHOW plan_cache_mode")
                plans[mode] = {
                    row["statement"]: (row["custom_plans"], row["generic_plans"])
                    for row in await connection.fetch(
                        "SELECT statement, custom_plans, generic_plans FROM pg_prepared_statements"
                    )
                }
    finally:
        await storage.close()
    sql = queries()
    planned, cached = plans["force_custom_plan"], plans["auto"]
    for name in (
        "list_deliveries",
        "replay_deliveries",
        "list_attempts",
        "list_events",
        "read_log",
    ):
        assert planned[sql[name]] == (calls, 0), name  # (replay_deliveries: the counts)
    assert sql["replay_deliveries"] not in cached  # the batches: unnamed, never kept
    assert sql["claim_deliveries"] in cached


async def test_the_workers_connections_plan_every_statement_for_its_call(
    settings: Settings,
) -> None:
    """The worker's statements name the log's rows by id, and are planned for each call's ids
    whatever the mode (see the test before). In Postgres's default mode each connection also
    builds, once per statement and again after every analyze or partition made, a plan for any
    ids over every partition, only to compare it and throw it away (20 to 40 ms for each of the
    delivery path's statements at 52 partitions). The worker's connections never build one,
    but for a sweep's statements, which read every partition whatever their arguments."""
    resources = await WorkerResources.open(settings)
    try:
        db = resources.storage.db
        assert db.custom_plan_pool is db.pool  # one pool, and every connection of it plans
        for _ in range(8):  # more than the 5 custom plans after which a generic one is built
            await resources.storage.deliveries.claim(["dlv_1"], 60.0)
            # A sweep's statements read every partition whatever their arguments: one plan
            # kept for all calls serves them.
            await resources.storage.maintenance.sweep(0.0, 5.0, 100, SWEEP_START)
        async with db.pool.acquire() as connection:
            assert await connection.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
            plans = {
                row["statement"]: (row["custom_plans"], row["generic_plans"])
                for row in await connection.fetch(
                    "SELECT statement, custom_plans, generic_plans FROM pg_prepared_statements"
                )
            }
        # Planned for each call's ids, as in the default mode (which would also have built, and
        # not counted, a plan for any ids: only the mode above tells the two apart).
        assert plans[queries()["claim_deliveries"]] == (8, 0)
        assert plans[queries()["due_deliveries"]][1] > 0
    finally:
        await resources.close()
