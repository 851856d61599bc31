"""`hookrelay dev`: the whole gateway on one machine, with no configuration.

Starts embedded Postgres and Redis under the data dir (unless URLs are configured), applies the
migrations, runs the API and a worker as child processes, and stops all of it on Ctrl-C or
SIGTERM.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import FrameType

import structlog

from hookrelay.durations import format_duration
from hookrelay.embedded import EmbeddedPostgres, EmbeddedRedis
from hookrelay.migrate import migrate
from hookrelay.retry import JITTER
from hookrelay.settings import LOOPBACK_NETWORKS, Settings

log = structlog.get_logger(__name__)

# Longer than a worker's own shutdown grace (the delivery timeout plus a margin).
CHILD_STOP_TIMEOUT_S = 30.0
API_START_TIMEOUT_S = 30.0


def read_or_create(path: Path, make: Callable[[], str]) -> str:
    """Return the secret kept in `path`, creating it (readable by the owner only) if missing."""
    if path.exists():
        return path.read_text().strip()
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def child_environment(settings: Settings) -> dict[str, str]:
    """The environment of the API and worker processes: the caller's, plus what dev filled in."""
    env = dict(os.environ)
    filled_in = {
        "DATABASE_URL": settings.require_database_url(),
        "REDIS_URL": settings.require_redis_url(),
        "ADMIN_TOKEN": settings.admin_token or "",
        "SECRET_KEY": base64.b64encode(settings.require_secret_key()).decode(),
        "ALLOWED_CIDRS": ",".join(str(net) for net in settings.allowed_cidrs),
        "LOG_FORMAT": settings.log_format,
        "DEMO_PAGE": "true",  # the live job page at /demo
    }
    env.update({f"HOOKRELAY_{name}": value for name, value in filled_in.items()})
    return env


class _StopRequested:
    """Set by SIGINT/SIGTERM; the main loop then shuts everything down in order."""

    def __init__(self) -> None:
        self.event = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.event.set()


def run_dev(settings: Settings, data_dir: Path, host: str, port: int) -> int:
    """Run the gateway until stopped; return the exit status."""
    stop = _StopRequested()
    data_dir.mkdir(parents=True, exist_ok=True)
    servers: list[EmbeddedPostgres | EmbeddedRedis] = []
    children: list[subprocess.Popen[bytes]] = []
    try:
        if not settings.database_url:
            postgres = EmbeddedPostgres(data_dir / "postgres")
            servers.append(postgres)
            settings = replace(settings, database_url=postgres.start())
            log.info("embedded postgres started", pid=postgres.pid)
        if not settings.redis_url:
            redis = EmbeddedRedis(data_dir / "redis")
            servers.append(redis)
            settings = replace(settings, redis_url=redis.start())
            log.info("embedded redis started", pid=redis.pid)
        settings = replace(
            settings,
            admin_token=settings.admin_token
            or read_or_create(data_dir / "admin_token", lambda: "hra_" + secrets.token_urlsafe(32)),
            secret_key=settings.secret_key
            or base64.b64decode(
                read_or_create(
                    data_dir / "secret_key", lambda: base64.b64encode(os.urandom(32)).decode()
                )
            ),
        ).with_allowed(*LOOPBACK_NETWORKS)
        log.warning("dev mode: callback URLs on loopback addresses are allowed")
        applied = asyncio.run(migrate(settings.require_database_url()))
        log.info("database ready", migrations_applied=len(applied))

        env = child_environment(settings)
        python = [sys.executable, "-m", "hookrelay"]
        children.append(
            subprocess.Popen([*python, "api", "--host", host, "--port", str(port)], env=env)
        )
        children.append(subprocess.Popen([*python, "worker"], env=env))
        url = f"http://{host}:{port}"
        _wait_for_api(url, children, stop)
        _print_banner(url, settings, data_dir)
        while not stop.event.wait(0.5):
            for child in children:
                if child.poll() is not None:
                    log.error("a hookrelay process exited; stopping", returncode=child.returncode)
                    return 1
        return 0
    finally:
        _stop_children(children)
        for server in reversed(servers):
            server.stop()
        log.info("hookrelay dev stopped")


def _wait_for_api(url: str, children: list[subprocess.Popen[bytes]], stop: _StopRequested) -> None:
    deadline = time.monotonic() + API_START_TIMEOUT_S
    while time.monotonic() < deadline and not stop.event.is_set():
        if any(child.poll() is not None for child in children):
            raise RuntimeError("the API or worker process exited during startup")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    if not stop.event.is_set():
        raise RuntimeError(f"the API did not answer at {url} within {API_START_TIMEOUT_S:g}s")


def _stop_children(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + CHILD_STOP_TIMEOUT_S
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def retry_schedule_text(schedule_s: tuple[float, ...]) -> str:
    """How a failing delivery is retried, e.g. `retries after 5s, 5m (+/-20% jitter), then ..."""
    if not schedule_s:
        return "no retries: a failed first attempt is dead-lettered"
    delays = ", ".join(format_duration(delay) for delay in schedule_s)
    return f"retries after {delays} (+/-{JITTER:.0%} jitter), then dead-lettered"


def _print_banner(url: str, settings: Settings, data_dir: Path) -> None:
    print(
        f"\n  hookrelay is running at {url}\n"
        f"  admin token: {settings.admin_token}\n"
        f"  data dir:    {data_dir.resolve()}\n"
        f"  deliveries:  {retry_schedule_text(settings.retry_schedule_s)}"
        "\n               (set HOOKRELAY_RETRY_SCHEDULE to change them)\n"
        f"  try:         curl -H 'Authorization: Bearer {settings.admin_token}' {url}/v1/apps\n"
        f"  live jobs:   {url}/demo (see the README: follow a job in a browser)\n"
        "  stop:        Ctrl-C\n",
        flush=True,
    )
