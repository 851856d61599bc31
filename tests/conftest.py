"""Shared fixtures: real servers for the session, a fresh database per test."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest

from hookrelay.settings import LOOPBACK_NETWORKS, Settings
from hookrelay.storage.migrate import migrate
from tests.receiver import Receiver, start_receiver
from tests.servers import postgres_server, redis_server

REPO_ROOT = Path(__file__).resolve().parents[1]
ADMIN_TOKEN = "test-admin-token"


def database_url(server_url: str, name: str) -> str:
    """The URL of database `name` on the server of `server_url`."""
    base, _, query = server_url.partition("?")
    base = base.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{query}" if query else "")


def server_tempdir() -> Path:
    """A folder for embedded servers outside pytest's tmp_path: pytest resets that tree to mode
    0700 when any session starts, which locks out Postgres's own user when we run as root."""
    return Path(tempfile.mkdtemp(prefix="hookrelay-test-"))


@pytest.fixture(scope="session")
def servers_dir() -> Iterator[Path]:
    folder = server_tempdir()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(servers_dir: Path) -> Iterator[str]:
    with postgres_server(servers_dir) as url:
        yield url


@pytest.fixture(scope="session")
def redis_url(servers_dir: Path) -> Iterator[str]:
    with redis_server(servers_dir) as url:
        yield url


@pytest.fixture(scope="session")
def template_database(postgres_url: str) -> Iterator[str]:
    """A migrated database that each test's database is cloned from (fast: a file copy)."""
    import asyncio

    name = f"hookrelay_template_{os.getpid()}"

    async def create() -> None:
        admin = await asyncpg.connect(postgres_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        await migrate(database_url(postgres_url, name))

    async def drop() -> None:
        admin = await asyncpg.connect(postgres_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    asyncio.run(create())
    yield name
    asyncio.run(drop())


@asynccontextmanager
async def scratch_database(
    postgres_url: str, prefix: str, template: str | None = None
) -> AsyncIterator[str]:
    """The URL of a database of its own (a copy of `template`, or empty), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"{copy}')
    finally:
        await admin.close()
    try:
        yield database_url(postgres_url, name)
    finally:
        admin = await asyncpg.connect(postgres_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def db_url(postgres_url: str, template_database: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test."""
    async with scratch_database(postgres_url, "hookrelay_test", template_database) as url:
        yield url


@pytest.fixture
def settings(request: pytest.FixtureRequest, db_url: str, redis_url: str) -> Settings:
    """Settings for one test: its own database and queue, millisecond retries, loopback allowed.

    A test changes them with `@pytest.mark.settings(field=value, ...)`.
    """
    marker = request.node.get_closest_marker("settings")
    return replace(base_settings(db_url, redis_url), **(marker.kwargs if marker else {}))


def base_settings(db_url: str, redis_url: str) -> Settings:
    return Settings(
        database_url=db_url,
        redis_url=redis_url,
        admin_token=ADMIN_TOKEN,
        secret_key=os.urandom(32),
        allowed_cidrs=LOOPBACK_NETWORKS,
        retry_schedule_s=(0.05, 0.1),
        delivery_timeout_s=2.0,
        queue_name=f"hookrelay:test:{uuid.uuid4().hex[:12]}",
        sweep_interval_s=0.25,
        sweep_grace_s=1.0,
        log_format="console",
    )


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A real HTTP receiver on a free loopback port."""
    receiver = Receiver()
    runner = await start_receiver(receiver)
    yield receiver
    await runner.cleanup()


@pytest.fixture
async def empty_db_url(postgres_url: str) -> AsyncIterator[str]:
    """A database with nothing in it, not even hookrelay's schema."""
    async with scratch_database(postgres_url, "hookrelay_empty") as url:
        yield url
