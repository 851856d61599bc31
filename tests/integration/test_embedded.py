"""The embedded Postgres and Redis servers: start, query, stop, restart, leftovers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest
import redis

from hookrelay.embedded import EmbeddedPostgres, EmbeddedRedis


def _fetch(url: str, *queries: str) -> object:
    """Run `queries` over one asyncpg connection; the first value of the last one."""

    async def run() -> object:
        conn = await asyncpg.connect(url)
        try:
            for query in queries[:-1]:
                await conn.execute(query)
            return await conn.fetchval(queries[-1])
        finally:
            await conn.close()

    return asyncio.run(run())


def _running_on(path: Path) -> list[psutil.Process]:
    """Live processes whose command line or working directory is under `path`."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            where = " ".join(proc.cmdline()) + " " + proc.cwd()
        except psutil.Error:
            continue
        if str(path) in where:
            found.append(proc)
    return found


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path / "data")
    yield server
    server.stop()
    assert _running_on(tmp_path) == []


@pytest.fixture
def rd(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis")
    yield server
    server.stop()
    assert _running_on(tmp_path) == []


def test_postgres_starts_answers_and_stops(pg: EmbeddedPostgres, tmp_path: Path) -> None:
    url = pg.start()
    assert url.startswith("postgresql://postgres@127.0.0.1:") and url.endswith("/hookrelay")
    assert pg.url_for("postgres").endswith("/postgres")
    assert pg.pid is not None and psutil.pid_exists(pg.pid)
    assert _fetch(url, "select current_database() || ':' || 1") == "hookrelay:1"
    assert _fetch(url, "show max_connections") == "200"
    assert pg.start() == url  # starting a running server is a no-op
    pid = pg.pid
    pg.stop()
    assert pg.pid is None and not psutil.pid_exists(pid)
    assert _running_on(tmp_path / "data") == []
    pg.stop()  # idempotent


def test_postgres_data_survives_restart(pg: EmbeddedPostgres) -> None:
    url = pg.start()
    _fetch(url, "create table t (v text)", "insert into t values ('kept')", "select 1")
    pg.stop()
    url = pg.start()
    assert _fetch(url, "select v from t") == "kept"


def test_postgres_leftover_from_killed_owner(tmp_path: Path) -> None:
    first = EmbeddedPostgres(tmp_path / "data")
    first.start()
    old_pid = first.pid
    assert old_pid is not None
    # `first` is forgotten without stop(), as when its owner was killed.
    second = EmbeddedPostgres(tmp_path / "data")
    try:
        url = second.start()
        assert not psutil.pid_exists(old_pid)
        assert second.pid not in (None, old_pid)
        assert _fetch(url, "select 1") == 1
        first.stop()  # a stale handle must not touch the new server
        assert _fetch(url, "select 2") == 2
    finally:
        second.stop()
    assert _running_on(tmp_path) == []


def test_redis_set_get_and_survives_restart(rd: EmbeddedRedis) -> None:
    url = rd.start()
    assert url.startswith("redis://127.0.0.1:") and url.endswith("/0")
    with redis.Redis.from_url(url) as client:
        client.set("k", "v")
        assert client.get("k") == b"v"
    pid = rd.pid
    assert pid is not None
    rd.stop()
    assert rd.pid is None and not psutil.pid_exists(pid)
    rd.stop()  # idempotent
    with redis.Redis.from_url(rd.start()) as client:
        assert client.get("k") == b"v"


def test_redis_leftover_from_killed_owner(tmp_path: Path) -> None:
    first = EmbeddedRedis(tmp_path / "redis")
    with redis.Redis.from_url(first.start()) as client:
        client.set("k", "v")
    old_pid = first.pid
    assert old_pid is not None
    second = EmbeddedRedis(tmp_path / "redis")
    try:
        url = second.start()
        assert not psutil.pid_exists(old_pid)
        first.stop()  # a stale handle must not touch the new server
        with redis.Redis.from_url(url) as client:
            assert client.get("k") == b"v"
    finally:
        second.stop()
    assert _running_on(tmp_path) == []
