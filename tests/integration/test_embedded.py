"""The embedded Postgres and Redis servers: start, query, stop, restart, leftovers."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest
import redis

from hookrelay.dev.embedded import EmbeddedPostgres, EmbeddedRedis, _wait_gone
from tests.conftest import server_tempdir


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
def root_dir() -> Iterator[Path]:
    """Where a test's servers keep their data (outside pytest's tmp_path; see server_tempdir)."""
    path = server_tempdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def pg(root_dir: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(root_dir / "data")
    yield server
    server.stop()
    assert _running_on(root_dir) == []


@pytest.fixture
def rd(root_dir: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(root_dir / "redis")
    yield server
    server.stop()
    assert _running_on(root_dir) == []


def test_postgres_starts_answers_and_stops(pg: EmbeddedPostgres, root_dir: Path) -> None:
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
    assert _running_on(root_dir / "data") == []
    pg.stop()  # idempotent


def test_postgres_data_survives_restart(pg: EmbeddedPostgres) -> None:
    url = pg.start()
    _fetch(url, "create table t (v text)", "insert into t values ('kept')", "select 1")
    pg.stop()
    url = pg.start()
    assert _fetch(url, "select v from t") == "kept"


def test_postgres_leftover_from_killed_owner(root_dir: Path) -> None:
    first = EmbeddedPostgres(root_dir / "data")
    first.start()
    old_pid = first.pid
    assert old_pid is not None
    # `first` is forgotten without stop(), as when its owner was killed.
    second = EmbeddedPostgres(root_dir / "data")
    try:
        url = second.start()
        assert not psutil.pid_exists(old_pid)
        assert second.pid not in (None, old_pid)
        assert _fetch(url, "select 1") == 1
        first.stop()  # a stale handle must not touch the new server
        assert _fetch(url, "select 2") == 2
    finally:
        first.stop()  # reaps it if the assertions above failed; a no-op otherwise
        second.stop()
    assert _running_on(root_dir) == []


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


def test_redis_leftover_from_killed_owner(root_dir: Path) -> None:
    first = EmbeddedRedis(root_dir / "redis")
    with redis.Redis.from_url(first.start()) as client:
        client.set("k", "v")
    old_pid = first.pid
    assert old_pid is not None
    second = EmbeddedRedis(root_dir / "redis")
    try:
        url = second.start()
        assert not psutil.pid_exists(old_pid)
        first.stop()  # a stale handle must not touch the new server
        with redis.Redis.from_url(url) as client:
            assert client.get("k") == b"v"
    finally:
        first.stop()  # reaps it if the assertions above failed; a no-op otherwise
        second.stop()
    assert _running_on(root_dir) == []


def test_a_leftover_that_exits_but_stays_a_zombie_of_its_owner_counts_as_stopped(
    root_dir: Path,
) -> None:
    # The owner started redis and never reaps it, as a `hookrelay dev` busy elsewhere would not.
    owner_code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from hookrelay.dev.embedded import EmbeddedRedis\n"
        "server = EmbeddedRedis(Path(sys.argv[1]))\n"
        "server.start()\n"
        "print(server.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", owner_code, str(root_dir / "redis")], stdout=subprocess.PIPE
    )
    second = EmbeddedRedis(root_dir / "redis")
    try:
        assert owner.stdout is not None
        old_pid = int(owner.stdout.readline())
        started = time.monotonic()
        second.start()
        took_s = time.monotonic() - started
        old = psutil.Process(old_pid)
        assert old.status() == psutil.STATUS_ZOMBIE  # stopped; only its owner can reap it
        assert took_s < 5.0, f"took {took_s:.1f}s: the zombie was taken for a live server"
    finally:
        second.stop()
        owner.kill()
        owner.wait()
        assert owner.stdout is not None
        owner.stdout.close()


def test_a_leader_that_exits_before_its_threads_is_reaped_once_they_end() -> None:
    # A server's main thread can show as a zombie while its other threads still exit (redis's
    # background threads on SIGTERM); the process is gone only once they have, and then ours
    # to reap, or its pid stays taken.
    code = (
        "import ctypes, os, threading, time\n"
        "threading.Thread(target=lambda: (time.sleep(0.5), os._exit(0))).start()\n"
        "ctypes.CDLL(None).pthread_exit(None)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        leader = psutil.Process(child.pid)
        deadline = time.monotonic() + 5.0
        while leader.status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the main thread never exited"
            time.sleep(0.01)
        assert _wait_gone(leader, 5.0)
        assert not psutil.pid_exists(child.pid)
    finally:
        child.kill()
        child.wait()
