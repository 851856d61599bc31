"""What a benchmark runs against: a local cluster (`hookrelay.dev.cluster`) with N worker processes
and an always-200 sink in its own process, in a temporary folder; and the calls it makes."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

from hookrelay.dev.cluster import Cluster, free_port, wait_until_answers

ADMIN_TOKEN = "bench-admin-token"


class Stack:
    """The cluster and its sink; `close()` stops it all and removes its folder (unless
    `keep_logs`). The processes start from `env`: the caller's HOOKRELAY_* settings
    (concurrency, timeouts...) apply, then the benchmark's own `settings` (names as Cluster
    takes them), but the URLs and secrets are the stack's own."""

    def __init__(
        self,
        workers: int,
        env: Mapping[str, str],
        keep_logs: bool = False,
        settings: Mapping[str, str] | None = None,
        api_processes: int = 1,
    ) -> None:
        self.keep_logs = keep_logs
        self.root = Path(tempfile.mkdtemp(prefix="hookrelay-bench-"))
        self.cluster = Cluster(
            self.root, ADMIN_TOKEN, env, {"log_level": "warning", **(settings or {})}
        )
        self.workers = workers
        self.api_processes = api_processes
        self.sink_port = free_port()
        self.sink_url = f"http://127.0.0.1:{self.sink_port}"

    @property
    def api_url(self) -> str:
        return self.cluster.url

    @property
    def database_url(self) -> str:
        return self.cluster.database_url

    async def start(self) -> None:
        await self.cluster.start()
        sink = self.cluster.spawn("sink", "hookrelay.bench.sink", "--port", str(self.sink_port))
        await self.cluster.start_api(self.api_processes)
        for _ in range(self.workers):
            self.cluster.start_worker()
        await wait_until_answers(f"{self.sink_url}/stats", sink)

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
        self.cluster.close()
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
