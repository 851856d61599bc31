"""Applies the numbered migrations, once each, under an advisory lock."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import structlog

from hookrelay.settings import Settings
from hookrelay.storage.db import Session
from hookrelay.storage.partitions import make_ahead
from hookrelay.storage.sql import Migration, migrations, queries

log = structlog.get_logger(__name__)

# Any fixed number: it names hookrelay's migration lock among the database's advisory locks.
MIGRATION_LOCK_KEY = 0x686F6F6B72656C61
LOCK_POLL_S = 0.1


async def migrate(
    database_url: str,
    available: list[Migration] | None = None,
    partition_interval_s: float = Settings.partition_interval_s,
) -> list[str]:
    """Apply every migration not yet applied, then make the log's partitions for the time just
    ahead (the workers make the later ones); return the names of the migrations applied now."""
    pending = migrations() if available is None else available
    sql = queries()
    connection = await asyncpg.connect(database_url)
    try:
        # Two processes migrating at once: the second waits here, then finds nothing to do. It
        # waits between statements, not in one: a migration that builds an index concurrently
        # waits for every statement under way to end, this one's too.
        while not await connection.fetchval(sql["lock_migrations"], MIGRATION_LOCK_KEY):  # noqa: ASYNC110 (a lock in Postgres: no event to wait on)
            await asyncio.sleep(LOCK_POLL_S)
        try:
            await connection.execute(sql["create_schema_migrations"])
            done = {row["version"] for row in await connection.fetch(sql["applied_migrations"])}
            applied = []
            for migration in pending:
                if migration.version in done:
                    continue
                if migration.transactional:
                    async with connection.transaction():
                        await connection.execute(migration.sql)
                        await connection.execute(
                            sql["record_migration"], migration.version, migration.name
                        )
                else:
                    for statement in migration.statements():
                        await connection.execute(statement)
                    await connection.execute(
                        sql["record_migration"], migration.version, migration.name
                    )
                log.info("migration applied", migration=migration.name)
                applied.append(migration.name)
            await make_ahead(
                Session(connection, sql), round(time.time() * 1000), partition_interval_s
            )
            return applied
        finally:
            await connection.execute(sql["unlock_migrations"], MIGRATION_LOCK_KEY)
    finally:
        await connection.close()
