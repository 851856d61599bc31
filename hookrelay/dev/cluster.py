"""A whole hookrelay of real processes on this machine, for the benchmarks and the acceptance
tests: embedded Postgres and Redis in one folder, then API and worker processes started (and
stopped, killed or restarted) on demand, each logging to a file in that folder."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import aiohttp

from hookrelay.dev.embedded import EmbeddedPostgres, EmbeddedRedis
from hookrelay.settings import Settings
from hookrelay.storage.migrate import migrate

# How long a process may take to answer after it was started, and between two asks.
START_TIMEOUT_S = 30.0
START_POLL_S = 0.05
# Longer than a worker's own shutdown grace (the delivery timeout plus a margin, 20 s).
STOP_TIMEOUT_S = 30.0
LOG_TAIL_CHARS = 3000


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until_answers(url: str, process: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until GET `url` answers 200; raise RuntimeError after START_TIMEOUT_S, or as soon
    as `process` (the one that should answer) has exited."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT_S
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while loop.time() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{url}: the process exited with {process.returncode}")
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(START_POLL_S)
    raise RuntimeError(f"{url} did not answer within {START_TIMEOUT_S:g} s")


def stop_processes(processes: Iterable[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every process still running, then wait for each; kill those still running
    after STOP_TIMEOUT_S."""
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Cluster:
    """Servers and hookrelay processes under `root`; `close()` ends them all (the folder stays).

    Every process starts from `base_env` (PATH and the like, and whatever HOOKRELAY_* settings
    the caller lets through), then this cluster's URLs, admin token and secret key, callbacks
    allowed to loopback, then `settings` (HOOKRELAY_* names without the prefix, lowercase).
    """

    def __init__(
        self,
        root: Path,
        admin_token: str,
        base_env: Mapping[str, str],
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.root = root
        self.admin_token = admin_token
        self.base_env = dict(base_env)
        self.settings = dict(settings or {})
        self.postgres = EmbeddedPostgres(root / "postgres")
        self.redis = EmbeddedRedis(root / "redis")
        self.api_port = free_port()
        self.url = f"http://127.0.0.1:{self.api_port}"
        # By name ("api", "api2" after a restart, "worker1", ...), in the order started.
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.database_url = ""
        self.redis_url = ""
        self.secret_key = base64.b64encode(os.urandom(32)).decode()

    async def start(self) -> None:
        """Start Postgres and Redis and apply the migrations; no hookrelay process yet. The
        first partitions are as wide as the processes' HOOKRELAY_PARTITION_INTERVAL says: the
        workers only add partitions after the last one there is."""
        self.database_url = self.postgres.start()
        self.redis_url = self.redis.start()
        interval_s = Settings.from_env(self.env()).partition_interval_s
        await migrate(self.database_url, partition_interval_s=interval_s)

    def env(self) -> dict[str, str]:
        """The environment every process of this cluster starts with."""
        env = dict(self.base_env)
        env.update(
            HOOKRELAY_DATABASE_URL=self.database_url,
            HOOKRELAY_REDIS_URL=self.redis_url,
            HOOKRELAY_ADMIN_TOKEN=self.admin_token,
            HOOKRELAY_SECRET_KEY=self.secret_key,
            HOOKRELAY_ALLOWED_CIDRS="127.0.0.0/8",
        )
        env.update({f"HOOKRELAY_{k.upper()}": v for k, v in self.settings.items()})
        return env

    def spawn(self, name: str, module: str, *args: str) -> subprocess.Popen[bytes]:
        """Run `python -m module args` as the process `name`, logging to `<root>/<name>.log`."""
        assert name not in self.processes, name
        with open(self.root / f"{name}.log", "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", module, *args], env=self.env(), stdout=log, stderr=log
            )
        self.processes[name] = process
        return process

    async def start_api(self, processes: int = 1) -> subprocess.Popen[bytes]:
        """Start an API process on this cluster's port (`processes` of them sharing it); return
        once it is ready."""
        started = self._started("api")
        name = "api" if started == 0 else f"api{started + 1}"
        shared = ["--processes", str(processes)] if processes > 1 else []
        process = self.spawn(name, "hookrelay", "api", "--port", str(self.api_port), *shared)
        try:
            await wait_until_answers(f"{self.url}/readyz", process)
        except RuntimeError as exc:
            raise RuntimeError(f"the API did not start: {exc}\n{self.logs()}") from None
        return process

    def start_worker(self) -> subprocess.Popen[bytes]:
        """Start a worker process (it needs no time to be ready: jobs wait in Redis)."""
        return self.spawn(f"worker{self._started('worker') + 1}", "hookrelay", "worker")

    def _started(self, kind: str) -> int:
        return sum(1 for name in self.processes if name.rstrip("0123456789") == kind)

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

    def logs(self, whole: bool = False) -> str:
        """The hookrelay processes' logs (the tail of each, unless `whole`)."""
        texts = (p.read_text(errors="replace") for p in sorted(self.root.glob("*.log")))
        return "\n".join(text if whole else text[-LOG_TAIL_CHARS:] for text in texts)

    def close(self) -> None:
        """SIGTERM every process, kill those still running after STOP_TIMEOUT_S, then stop
        Redis and Postgres."""
        stop_processes(self.processes.values())
        self.redis.stop()
        self.postgres.stop()
