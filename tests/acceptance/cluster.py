"""A hookrelay deployment of real processes for fault tests: its own Postgres and Redis, an API
process and worker processes, each of which a test may kill, stop or restart."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from hookrelay.bench.stack import free_port
from hookrelay.embedded import EmbeddedPostgres, EmbeddedRedis
from hookrelay.storage.migrate import migrate

ADMIN_TOKEN = "acceptance-admin-token"


class Cluster:
    """Servers and hookrelay processes under one folder; `close()` ends them all."""

    def __init__(self, root: Path, **settings: str) -> None:
        self.root = root
        self.postgres = EmbeddedPostgres(root / "postgres")
        self.redis = EmbeddedRedis(root / "redis")
        self.api_port = free_port()
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.settings = settings
        self.processes: list[subprocess.Popen[bytes]] = []
        self.database_url = ""
        self.redis_url = ""
        self.secret_key = base64.b64encode(os.urandom(32)).decode()

    async def start(self) -> None:
        self.database_url = self.postgres.start()
        self.redis_url = self.redis.start()
        await migrate(self.database_url)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKRELAY_")}
        env.update(
            HOOKRELAY_DATABASE_URL=self.database_url,
            HOOKRELAY_REDIS_URL=self.redis_url,
            HOOKRELAY_ADMIN_TOKEN=ADMIN_TOKEN,
            HOOKRELAY_SECRET_KEY=self.secret_key,
            HOOKRELAY_ALLOWED_CIDRS="127.0.0.0/8",
            HOOKRELAY_LOG_FORMAT="json",
            HOOKRELAY_SWEEP_INTERVAL="250ms",
            HOOKRELAY_SWEEP_GRACE="1s",
        )
        env.update({f"HOOKRELAY_{k.upper()}": v for k, v in self.settings.items()})
        return env

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.root / f"{args[0]}-{uuid.uuid4().hex[:6]}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "hookrelay", *args], env=self.env(), stdout=log, stderr=log
        )
        log.close()
        self.processes.append(process)
        return process

    async def start_api(self) -> subprocess.Popen[bytes]:
        process = self._spawn("api", "--port", str(self.api_port))
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return process
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError("the API did not start")

    def start_worker(self) -> subprocess.Popen[bytes]:
        return self._spawn("worker")

    def restart_redis_empty(self) -> None:
        """Stop Redis, throw away everything it held, start it again on the same port."""
        self.redis.stop()
        for path in self.redis.data_dir.iterdir():
            if path.name != "redis.log":
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        self.redis.start()

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(self.database_url)
        try:
            return list(await connection.fetch(query, *args))
        finally:
            await connection.close()

    def logs(self, whole: bool = False) -> str:
        """The hookrelay processes' logs (the tail of each, unless `whole`)."""
        texts = (p.read_text(errors="replace") for p in self.root.glob("*.log"))
        return "\n".join(text if whole else text[-3000:] for text in texts)

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.redis.stop()
        self.postgres.stop()


class Client:
    """The API calls a provider makes in these tests."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base
        self.key = ""
        self.app_id = ""

    async def call(self, method: str, path: str, body: Any = None, token: str = "") -> Any:
        headers = {"Authorization": f"Bearer {token or self.key}"}
        async with self.session.request(
            method, self.base + path, json=body, headers=headers
        ) as response:
            return response.status, await response.json()

    async def create_app(self) -> None:
        status, app = await self.call("POST", "/v1/apps", {"name": "faults"}, ADMIN_TOKEN)
        assert status == 201, app
        self.key, self.app_id = app["api_key"], app["id"]

    async def add_endpoint(self, url: str, **fields: Any) -> dict[str, Any]:
        status, endpoint = await self.call(
            "POST", f"/v1/apps/{self.app_id}/endpoints", {"url": url, **fields}
        )
        assert status == 201, endpoint
        result: dict[str, Any] = endpoint
        return result

    async def send(self, n: int) -> tuple[int, Any]:
        result: tuple[int, Any] = await self.call(
            "POST", f"/v1/apps/{self.app_id}/events", {"type": "image.ready", "data": {"n": n}}
        )
        return result
