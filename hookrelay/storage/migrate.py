"""Applies the numbered migrations, once each, under an advisory lock."""

from __future__ import annotations

import asyncpg
import structlog

from hookrelay.storage.sql import Migration, migrations, queries

log = structlog.get_logger(__name__)

# Any fixed number: it names hookrelay's migration lock among the database's advisory locks.
MIGRATION_LOCK_KEY = 0x686F6F6B72656C61


async def migrate(database_url: str, available: list[Migration] | None = None) -> list[str]:
    """Apply every migration not yet applied; return the names applied now."""
    pending = migrations() if available is None else available
    sql = queries()
    connection = await asyncpg.connect(database_url)
    try:
        # Two processes migrating at once: the second waits here, then finds nothing to do.
        await connection.execute(sql["lock_migrations"], MIGRATION_LOCK_KEY)
        try:
            await connection.execute(sql["create_schema_migrations"])
            done = {row["version"] for row in await connection.fetch(sql["applied_migrations"])}
            applied = []
            for migration in pending:
                if migration.version in done:
                    continue
                async with connection.transaction():
                    await connection.execute(migration.sql)
                    await connection.execute(
                        sql["record_migration"], migration.version, migration.name
                    )
                log.info("migration applied", migration=migration.name)
                applied.append(migration.name)
            return applied
        finally:
            await connection.execute(sql["unlock_migrations"], MIGRATION_LOCK_KEY)
    finally:
        await connection.close()
