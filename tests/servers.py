"""The Postgres and Redis servers a test session uses.

In order of preference: the URLs in HOOKRELAY_TEST_DATABASE_URL / HOOKRELAY_TEST_REDIS_URL;
testcontainers, when a Docker engine answers; else embedded servers started for the session.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def _docker_available() -> bool:
    """Whether a Docker engine answers (testcontainers needs one)."""
    if os.environ.get("HOOKRELAY_TEST_NO_DOCKER"):
        return False
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    import docker  # type: ignore[import-untyped]

    try:
        client = docker.from_env(timeout=2)
    except Exception:
        return False
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()


@contextlib.contextmanager
def postgres_server(workdir: Path) -> Iterator[str]:
    """Yield the URL of a Postgres server this session may create databases on."""
    url = os.environ.get("HOOKRELAY_TEST_DATABASE_URL")
    if url:
        yield url
        return
    if _docker_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:17-alpine", driver=None) as container:
            yield container.get_connection_url()
        return
    from hookrelay.dev.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(workdir / "postgres", database="postgres")
    try:
        yield server.start()
    finally:
        server.stop()


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """Yield the URL of a Redis server (tests keep apart by queue name, never by flushing)."""
    url = os.environ.get("HOOKRELAY_TEST_REDIS_URL")
    if url:
        yield url
        return
    if _docker_available():
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7-alpine") as container:
            host = container.get_container_host_ip()
            yield f"redis://{host}:{container.get_exposed_port(6379)}/0"
        return
    from hookrelay.dev.embedded import EmbeddedRedis

    server = EmbeddedRedis(workdir / "redis")
    try:
        yield server.start()
    finally:
        server.stop()
