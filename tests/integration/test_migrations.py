"""Migrations on a real Postgres: from empty, twice at once, and every named query prepares."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from hookrelay.migrate import migrate
from hookrelay.sql import migrations, queries
from tests.conftest import database_url


@pytest.fixture
async def empty_db_url(postgres_url: str) -> AsyncIterator[str]:
    name = f"hookrelay_empty_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    yield database_url(postgres_url, name)
    admin = await asyncpg.connect(postgres_url)
    await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await admin.close()


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
    connection = await asyncpg.connect(db_url)
    try:
        for name, sql in queries().items():
            try:
                # Listing queries take their optional filters in place of {filters}.
                await connection.prepare(sql.replace("{filters}", ""))
            except asyncpg.PostgresError as exc:
                raise AssertionError(f"query {name} does not prepare: {exc}") from exc
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
