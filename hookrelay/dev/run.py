"""`hookrelay dev`: the whole gateway on one machine, with no configuration.

Starts embedded Postgres and Redis under the data dir (unless URLs are configured), applies the
migrations, runs the API and a worker as child processes, and stops all of it on Ctrl-C or
SIGTERM.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import fcntl
import os
import secrets
import signal
import socket
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

from hookrelay.dev.embedded import EmbeddedPostgres, EmbeddedRedis
from hookrelay.durations import format_duration
from hookrelay.retry import JITTER
from hookrelay.settings import LOOPBACK_NETWORKS, ConfigError, Settings
from hookrelay.storage.migrate import migrate

log = structlog.get_logger(__name__)

# Longer than a worker's own shutdown grace (the delivery timeout plus a margin).
CHILD_STOP_TIMEOUT_S = 30.0
API_START_TIMEOUT_S = 30.0
# In the data dir; held by the running `hookrelay dev`, with its pid in it.
LOCK_FILE = "dev.lock"


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
    """Set by SIGINT/SIGTERM/SIGHUP; the main loop then shuts everything down in order."""

    def __init__(self) -> None:
        self.event = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.event.set()


def lock_data_dir(data_dir: Path) -> int:
    """Take the data dir for this process (its pid written in the lock file); return the lock's
    file descriptor, held until this process exits. Raises ConfigError if another holds it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise ConfigError(
            f"another hookrelay dev (pid {holder}) is using {data_dir}; "
            "stop it first, or pass --data-dir"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def check_port_free(host: str, port: int) -> None:
    """Raise ConfigError if the API could not listen on host:port (taken, or no such address)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the API does
            sock.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is already in use (another hookrelay dev or API?); "
                "stop it first, or pass --port"
            ) from None
        raise ConfigError(f"the API cannot listen on {host}:{port}: {exc}") from None


def run_dev(settings: Settings, data_dir: Path, host: str, port: int) -> int:
    """Run the gateway until stopped; return the exit status (0 when asked to stop)."""
    stop = _StopRequested()
    lock = lock_data_dir(data_dir)
    try:
        check_port_free(host, port)
        return _run_locked(settings, data_dir, host, port, stop)
    finally:
        os.close(lock)


def _run_locked(
    settings: Settings, data_dir: Path, host: str, port: int, stop: _StopRequested
) -> int:
    servers: list[EmbeddedPostgres | EmbeddedRedis] = []
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        if not settings.database_url:
            postgres = EmbeddedPostgres(data_dir / "postgres", new_session=True)
            servers.append(postgres)
            settings = replace(settings, database_url=postgres.start())
            log.info("embedded postgres started", pid=postgres.pid)
        if not settings.redis_url and not stop.event.is_set():
            redis = EmbeddedRedis(data_dir / "redis", new_session=True)
            servers.append(redis)
            settings = replace(settings, redis_url=redis.start())
            log.info("embedded redis started", pid=redis.pid)
        if stop.event.is_set():
            return 0
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
        applied = asyncio.run(
            migrate(
                settings.require_database_url(), partition_interval_s=settings.partition_interval_s
            )
        )
        log.info("database ready", migrations_applied=len(applied))
        if stop.event.is_set():
            return 0

        env = child_environment(settings)
        python = [sys.executable, "-m", "hookrelay"]
        # Own sessions, as the servers: a Ctrl-C reaches only us, and we stop them in order.
        for name, argv in (
            ("api", ["api", "--host", host, "--port", str(port)]),
            ("worker", ["worker"]),
        ):
            children[name] = subprocess.Popen([*python, *argv], env=env, start_new_session=True)
        url = f"http://{host}:{port}"
        try:
            if not _wait_for_api(url, port, children, servers, stop):
                return 0
        except _StartFailed as exc:
            log.error("stopping everything", because=str(exc))
            return 1
        _print_banner(url, settings, data_dir)
        while not stop.event.wait(0.5):
            if (exited := _exited(children, servers)) is not None:
                log.error("stopping everything", because=exited)
                return 1
        return 0
    except Exception:
        if not stop.event.is_set():
            raise
        # Asked to stop during start-up: what failed is a consequence of stopping.
        log.debug("start-up interrupted", exc_info=True)
        return 0
    finally:
        _stop_children(list(children.values()))
        for server in reversed(servers):
            server.stop()
        log.info("hookrelay dev stopped")


class _StartFailed(Exception):
    """A process of ours exited, or the API did not answer, while starting."""


def _exited(
    children: dict[str, subprocess.Popen[bytes]], servers: list[EmbeddedPostgres | EmbeddedRedis]
) -> str | None:
    """What has exited among the servers and child processes, or None if all run."""
    for server in servers:
        if server.pid is None:
            return f"the embedded {server.name} exited"
    for name, child in children.items():
        if child.poll() is not None:
            return f"the hookrelay {name} process exited with code {child.returncode}"
    return None


def _wait_for_api(
    url: str,
    port: int,
    children: dict[str, subprocess.Popen[bytes]],
    servers: list[EmbeddedPostgres | EmbeddedRedis],
    stop: _StopRequested,
) -> bool:
    """Wait until our API answers; False if asked to stop first. Raises if something exits."""
    deadline = time.monotonic() + API_START_TIMEOUT_S
    while time.monotonic() < deadline and not stop.event.is_set():
        if (exited := _exited(children, servers)) is not None:
            raise _StartFailed(f"{exited} during start-up")
        # Another program's API on the port must not pass for ours.
        if _listens_on(children["api"].pid, port):
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return True
            except OSError:
                pass
        time.sleep(0.1)
    if not stop.event.is_set():
        raise _StartFailed(f"the API did not answer at {url} within {API_START_TIMEOUT_S:g}s")
    return False


def _listens_on(pid: int, port: int) -> bool:
    """Whether process `pid` listens on TCP `port` (True if psutil is missing: cannot tell)."""
    try:
        import psutil
    except ImportError:
        return True
    try:
        process = psutil.Process(pid)
        # net_connections() since psutil 6.0; connections() before.
        connections = (getattr(process, "net_connections", None) or process.connections)(kind="tcp")
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in connections)


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
        f"  console:     {url}/console (sign in with the admin token)\n"
        f"  live jobs:   {url}/demo (see the README: follow a job in a browser)\n"
        "  stop:        Ctrl-C\n",
        flush=True,
    )
