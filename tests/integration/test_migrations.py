"""Migrations on a real Postgres: from empty, twice at once, and every named query prepares."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from hookrelay.api.app import create_app
from hookrelay.ids import new_id
from hookrelay.resources import resource_dir
from hookrelay.storage.migrate import migrate
from hookrelay.storage.sql import migrations, query_files
from tests.conftest import base_settings
from tests.integration.api_calls import ADMIN
from tests.integration.served import ServedAsInProduction


async def test_migrate_applies_every_migration_to_an_empty_database(empty_db_url: str) -> None:
    applied = await migrate(empty_db_url)
    assert applied == [m.name for m in migrations()]
    assert await migrate(empty_db_url) == []


async def test_two_concurrent_migrations_apply_each_migration_once(empty_db_url: str) -> None:
    first, second = await asyncio.gather(migrate(empty_db_url), migrate(empty_db_url))
    assert sorted(first + second) == sorted(m.name for m in migrations())
    connection = await asyncpg.connect(empty_db_url)
    try:
        versions = await connection.fetch("SELECT version FROM schema_migrations")
    finally:
        await connection.close()
    assert sorted(r["version"] for r in versions) == [m.version for m in migrations()]


async def test_every_named_query_prepares_against_the_schema(db_url: str) -> None:
    # Every file of sql/queries/, and every query in it as it is run: filters are parameters,
    # so the filtered listings and bulk replays are prepared here like any other query.
    files = query_files()
    assert set(files) == {path.stem for path in (resource_dir("sql") / "queries").glob("*.sql")}
    connection = await asyncpg.connect(db_url)
    try:
        for file, named in files.items():
            assert named, f"{file}.sql holds no query"
            for name, sql in named.items():
                try:
                    await connection.prepare(sql)
                except asyncpg.PostgresError as exc:
                    message = f"query {name} ({file}.sql) does not prepare: {exc}"
                    raise AssertionError(message) from exc
    finally:
        await connection.close()


async def test_sql_ids_have_the_python_id_shape(db_url: str) -> None:
    from hookrelay.ids import is_id

    connection = await asyncpg.connect(db_url)
    try:
        made = await connection.fetchval("SELECT hookrelay_id('dlv_')")
    finally:
        await connection.close()
    assert is_id(made, "dlv_")


async def test_idempotency_keys_taken_before_routes_were_told_apart_keep_their_route(
    empty_db_url: str,
) -> None:
    before = [m for m in migrations() if m.version < 8]
    await migrate(empty_db_url, before)
    connection = await asyncpg.connect(empty_db_url)
    try:
        await connection.execute("INSERT INTO apps (id, name) VALUES ('app_1', 'acme')")
        await connection.execute(
            """INSERT INTO idempotency_keys (app_id, key, request_hash, response) VALUES
               ('app_1', 'one', '\\x00', '{"id": "evt_1", "type": "a.b", "data": {}}'),
               ('app_1', 'many', '\\x00', '{"data": [{"id": "evt_2", "data": {}}]}')"""
        )
        await migrate(empty_db_url)
        keys = {r["key"] for r in await connection.fetch("SELECT key FROM idempotency_keys")}
    finally:
        await connection.close()
    assert keys == {"events:one", "events/batch:many"}


async def test_replay_chains_made_before_replays_named_their_original_end_at_it(
    empty_db_url: str, redis_url: str, aiohttp_client: Any
) -> None:
    # Before, a replay of a replay named that replay: O (dead) <- R1 (dead) <- R2 (succeeded).
    # Beside it, L: dead, never replayed, still lost.
    await migrate(empty_db_url, [m for m in migrations() if m.version < 7])
    # Sorted: ids drawn in one millisecond are not in order, and the latest replay is the
    # greatest id.
    o, r1, r2, lost = sorted(new_id("dlv_") for _ in range(4))
    event, other_event, endpoint = new_id("evt_"), new_id("evt_"), new_id("ep_")
    connection = await asyncpg.connect(empty_db_url)
    try:
        await connection.execute(
            f"""
            INSERT INTO apps (id, name) VALUES ('app_1', 'acme');
            INSERT INTO endpoints (id, app_id, url, description, signing, secret_ciphertext,
                                   secret_key_id, headers)
            VALUES ('{endpoint}', 'app_1', 'http://127.0.0.1:9/hook', '', 'hmac', '\\x00', 'k',
                    '{{}}');
            INSERT INTO events (id, app_id, type, body, created_at)
            VALUES ('{event}', 'app_1', 'image.ready', '{{}}', now()),
                   ('{other_event}', 'app_1', 'image.ready', '{{}}', now());
            INSERT INTO deliveries (id, app_id, event_id, endpoint_id, status, finished_at,
                                    replay_of)
            VALUES ('{o}', 'app_1', '{event}', '{endpoint}', 'dead', now(), NULL),
                   ('{r1}', 'app_1', '{event}', '{endpoint}', 'dead', now(), '{o}'),
                   ('{r2}', 'app_1', '{event}', '{endpoint}', 'succeeded', now(), '{r1}'),
                   ('{lost}', 'app_1', '{other_event}', '{endpoint}', 'dead', now(), NULL);
            """
        )
        await migrate(empty_db_url)
    finally:
        await connection.close()

    settings = base_settings(empty_db_url, redis_url)
    api = await aiohttp_client(ServedAsInProduction(create_app(settings, None), settings))

    async def shown(delivery_id: str) -> dict[str, Any]:
        response = await api.get(f"/v1/apps/app_1/deliveries/{delivery_id}", headers=ADMIN)
        assert response.status == 200, await response.text()
        found: dict[str, Any] = await response.json()
        return found

    original = await shown(o)
    assert (original["recovered_by"], original["replayed_by"]) == (r2, r2)
    assert original["recovered_at"] is not None
    assert [(await shown(r))["replay_of"] for r in (r1, r2)] == [o, o]
    assert (await shown(r1))["recovered_by"] is None  # a failed replay is not what was lost
    response = await api.post(
        "/v1/apps/app_1/deliveries/replay", json={"dry_run": True}, headers=ADMIN
    )
    assert response.status == 202, await response.text()
    assert await response.json() == {"matched": 1, "replayed": 0, "replayable": 1}


async def test_a_new_installation_partitions_its_log_at_least_a_minute_after_0010(
    empty_db_url: str,
) -> None:
    # Between 0010 and 0012, rows past the cutover are refused by its CHECK: a cutover only
    # seconds ahead (0010 applied at a minute's 59th second) refused the writes of an ingest
    # that ran while 0011 and 0012 were applied.
    await migrate(empty_db_url, [m for m in migrations() if m.version <= 10])
    connection = await asyncpg.connect(empty_db_url)
    try:
        ahead_ms = await connection.fetchval(
            "SELECT cutover_ms - extract(epoch FROM now()) * 1000 FROM log_partitioning"
        )
    finally:
        await connection.close()
    # (now() here is a moment after the migration's own)
    assert 59_000 <= ahead_ms <= 120_000


async def test_partitioning_the_log_waits_for_a_writer_without_deadlocking(
    empty_db_url: str,
) -> None:
    # A writer holds the events (an ingest between its event and its deliveries) when the
    # migration that partitions the log (0012) starts; the migration waits for it, and the
    # writer's deliveries go in: nobody is aborted.
    await migrate(empty_db_url, [m for m in migrations() if m.version <= 11])
    writer = await asyncpg.connect(empty_db_url)
    try:
        await writer.execute(
            "INSERT INTO apps (id, name) VALUES ('app_1', 'a');"
            "INSERT INTO endpoints (id, app_id, url, secret_ciphertext, secret_key_id)"
            " VALUES ('ep_1', 'app_1', 'https://example.com/', '\\x00', 'k')"
        )
        await writer.execute("SET deadlock_timeout = '100ms'")
        writing = writer.transaction()
        await writing.start()
        await writer.execute(
            "INSERT INTO events (id, app_id, type, body, created_at)"
            " VALUES (hookrelay_id('evt_'), 'app_1', 'job.completed', '{}', now())"
        )
        migrating = asyncio.create_task(migrate(empty_db_url))
        await asyncio.sleep(1.0)  # the migration now waits for a lock the writer holds
        assert not migrating.done()
        await writer.execute(
            "INSERT INTO deliveries (app_id, event_id, endpoint_id, status)"
            " SELECT 'app_1', id, 'ep_1', 'pending' FROM events"
        )
        await writing.commit()
        await asyncio.wait_for(migrating, 30)
        assert await writer.fetchval("SELECT count(*) FROM deliveries_first") == 1
    finally:
        await writer.close()
