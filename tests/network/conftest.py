"""Network fixtures: a real `hookrelay api` process on a loopback port, its own database, and a
fresh app per test."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from hookrelay.dev.cluster import free_port
from tests.conftest import ADMIN_TOKEN, database_url
from tests.network import wire

API_START_TIMEOUT_S = 20.0


class ApiProcess:
    """`hookrelay api` as a subprocess; its log is kept for the test's failure report."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hookrelay", "api", "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=log,
            )
        self._wait_until_ready()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + API_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the API exited: {self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"the API did not start: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def terminate(self) -> None:
        """Ask the process to shut down, without waiting for it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        self.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass(frozen=True)
class App:
    """An app of the API under test, with its key."""

    id: str
    key: str

    @property
    def events_path(self) -> str:
        return f"/v1/apps/{self.id}/events"


def create_app(port: int) -> App:
    body = b'{"name": "network"}'
    with wire.Connection(port) as connection:
        connection.send(wire.post("/v1/apps", body, ADMIN_TOKEN))
        answer = connection.response()
    assert answer.status == 201, answer
    created = answer.json()
    return App(created["id"], created["api_key"])


def stored_events(port: int, app: App) -> list[dict[str, object]]:
    """The app's events as the API lists them (newest first, at most 250)."""
    with wire.Connection(port) as connection:
        connection.send(wire.get(f"{app.events_path}?limit=250", app.key))
        answer = connection.response()
    assert answer.status == 200, answer
    events: list[dict[str, object]] = answer.json()["data"]
    return events


@pytest.fixture(scope="module")
def network_database(postgres_url: str, template_database: str) -> Iterator[str]:
    """A migrated database for the API processes of one test module."""
    name = f"hookrelay_net_{uuid.uuid4().hex[:12]}"

    async def run(statement: str) -> None:
        admin = await asyncpg.connect(postgres_url)
        try:
            await admin.execute(statement)
        finally:
            await admin.close()

    asyncio.run(run(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"'))
    yield database_url(postgres_url, name)
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def api_settings() -> dict[str, str]:
    """HOOKRELAY_* settings (without the prefix) of the module's API; a module overrides this."""
    return {}


@pytest.fixture(scope="module")
def api_env(network_database: str, redis_url: str, api_settings: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKRELAY_")}
    env.update(
        HOOKRELAY_DATABASE_URL=network_database,
        HOOKRELAY_REDIS_URL=redis_url,
        HOOKRELAY_ADMIN_TOKEN=ADMIN_TOKEN,
        HOOKRELAY_SECRET_KEY=base64.b64encode(os.urandom(32)).decode(),
        HOOKRELAY_QUEUE_NAME=f"hookrelay:test:{uuid.uuid4().hex[:12]}",
        HOOKRELAY_LOG_FORMAT="json",
    )
    env.update({f"HOOKRELAY_{name}": value for name, value in api_settings.items()})
    return env


@pytest.fixture(scope="module")
def api(api_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    process = ApiProcess(api_env, tmp_path_factory.mktemp("api") / "api.log")
    yield process
    process.stop()


@pytest.fixture
def app(api: ApiProcess) -> App:
    return create_app(api.port)


def event_body(n: int, size: int) -> bytes:
    """A valid event of exactly `size` bytes, padded in its data."""
    bare = {"type": "image.ready", "data": {"n": n, "padding": ""}}
    padding = "x" * (size - len(json.dumps(bare).encode()))
    return json.dumps({"type": "image.ready", "data": {"n": n, "padding": padding}}).encode()


def count_events(database_url: str, app: App) -> int:
    async def count() -> int:
        connection = await asyncpg.connect(database_url)
        try:
            found: int = await connection.fetchval(
                "SELECT count(*) FROM events WHERE app_id = $1", app.id
            )
            return found
        finally:
            await connection.close()

    return asyncio.run(count())
