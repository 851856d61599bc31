"""A whole hookrelay on this machine for a benchmark: embedded Postgres and Redis, the API, N
worker processes and an always-200 sink, each in its own process."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from hookrelay.embedded import EmbeddedPostgres, EmbeddedRedis
from hookrelay.storage.migrate import migrate

ADMIN_TOKEN = "bench-admin-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Stack:
    """Everything a benchmark runs against; `close()` stops it all and removes its data."""

    def __init__(self, workers: int, keep_logs: bool = False, **settings: str) -> None:
        self.keep_logs = keep_logs
        self.root = Path(tempfile.mkdtemp(prefix="hookrelay-bench-"))
        self.postgres = EmbeddedPostgres(self.root / "postgres")
        self.redis = EmbeddedRedis(self.root / "redis")
        self.workers = workers
        self.settings = settings
        self.api_url = f"http://127.0.0.1:{free_port()}"
        self.sink_url = f"http://127.0.0.1:{free_port()}"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.database_url = ""

    async def start(self) -> None:
        self.database_url = self.postgres.start()
        redis_url = self.redis.start()
        await migrate(self.database_url)
        # The caller's HOOKRELAY_* settings (concurrency, timeouts...) apply; the URLs and
        # secrets are this stack's own.
        env = dict(os.environ)
        env.update(
            HOOKRELAY_DATABASE_URL=self.database_url,
            HOOKRELAY_REDIS_URL=redis_url,
            HOOKRELAY_ADMIN_TOKEN=ADMIN_TOKEN,
            HOOKRELAY_SECRET_KEY=base64.b64encode(os.urandom(32)).decode(),
            HOOKRELAY_ALLOWED_CIDRS="127.0.0.0/8",
            HOOKRELAY_LOG_LEVEL="warning",
        )
        env.update({f"HOOKRELAY_{k.upper()}": v for k, v in self.settings.items()})
        python = [sys.executable, "-m"]
        api_port = self.api_url.rsplit(":", 1)[1]
        sink_port = self.sink_url.rsplit(":", 1)[1]
        self._spawn("sink", [*python, "hookrelay.bench.sink", "--port", sink_port], env)
        self._spawn("api", [*python, "hookrelay", "api", "--port", api_port], env)
        for n in range(self.workers):
            self._spawn(f"worker{n + 1}", [*python, "hookrelay", "worker"], env)
        await self._wait_for(f"{self.api_url}/readyz")
        await self._wait_for(f"{self.sink_url}/stats")

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        with open(self.root / f"{name}.log", "wb") as log:
            self.processes[name] = subprocess.Popen(argv, env=env, stdout=log, stderr=log)

    async def _wait_for(self, url: str) -> None:
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.get(url) as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{url} did not answer; logs in {self.root}")

    async def sink_stats(
        self, session: aiohttp.ClientSession, ids: bool = False, path: str | None = None
    ) -> Any:
        params = {"ids": "1"} if ids else {}
        if path is not None:
            params["path"] = path
        async with session.get(f"{self.sink_url}/stats", params=params) as response:
            return await response.json()

    async def counters(self, session: aiohttp.ClientSession) -> dict[str, float]:
        """The workers' counters from /metrics (histogram buckets left out)."""
        async with session.get(f"{self.api_url}/metrics") as response:
            text = await response.text()
        found = {}
        for line in text.splitlines():
            if line and not line.startswith("#") and "_bucket{" not in line:
                name, value = line.rsplit(" ", 1)
                found[name] = float(value)
        return found

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.redis.stop()
        self.postgres.stop()
        if self.keep_logs:
            print(f"  logs kept in {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)


class Api:
    """The calls a benchmark makes."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def call(self, method: str, path: str, token: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"}
        async with self.session.request(
            method, self.base + path, json=body, headers=headers
        ) as response:
            if response.status >= 300:
                raise RuntimeError(f"{method} {path}: {response.status} {await response.text()}")
            return await response.json()
