"""`hookrelay dev` against what a user does: runs it twice in one folder, on a taken port, kills
one of its servers, presses Ctrl-C while it starts."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from hookrelay.dev.cluster import free_port
from tests.acceptance.test_dev_gateway import DevGateway, processes_under
from tests.conftest import server_tempdir

pytestmark = pytest.mark.acceptance


def dev_argv(data_dir: Path, port: int) -> list[str]:
    argv = [sys.executable, "-m", "hookrelay", "dev", "--port", str(port)]
    return [*argv, "--data-dir", str(data_dir)]


def dev_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("HOOKRELAY_")}


def run_dev_once(data_dir: Path, port: int, timeout_s: float) -> subprocess.CompletedProcess[str]:
    """Run a `hookrelay dev` that should refuse to start; its output."""
    return subprocess.run(
        dev_argv(data_dir, port),
        capture_output=True, text=True, env=dev_env(), timeout=timeout_s, check=False,
    )  # fmt: skip


def postmaster_of(data_dir: Path) -> psutil.Process:
    """The postgres server (not a backend) of a dev running on `data_dir`."""
    return next(p for p in processes_under(data_dir) if "-D" in p.cmdline())


def wait_for_line(log_path: Path, line: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while line not in log_path.read_text(errors="replace"):
        assert process.poll() is None, f"dev exited:\n{log_path.read_text()}"
        assert time.monotonic() < deadline, f"no {line!r} in:\n{log_path.read_text()}"
        time.sleep(0.02)


@pytest.fixture
def folder() -> Iterator[Path]:
    path = server_tempdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_a_second_dev_is_refused_and_the_first_stops_when_its_postgres_dies(
    folder: Path,
) -> None:
    first = DevGateway(folder / "data")
    first.start()
    try:
        await first.wait_ready()
        assert first.process is not None
        servers = {p.pid for p in processes_under(first.data_dir)}

        # Same data dir: refused at once, touching nothing of the first.
        started = time.monotonic()
        second = await asyncio.to_thread(run_dev_once, first.data_dir, free_port(), 20)
        assert second.returncode == 2, second.stderr
        assert f"another hookrelay dev (pid {first.process.pid}) is using" in second.stderr
        assert time.monotonic() - started < 10
        assert {p.pid for p in processes_under(first.data_dir)} == servers
        await first.wait_ready()

        # Same port, another data dir: refused before starting anything, no banner.
        third = await asyncio.to_thread(run_dev_once, folder / "other", first.port, 60)
        assert third.returncode == 2, third.stdout + third.stderr
        assert f"port {first.port} on 127.0.0.1 is already in use" in third.stderr
        assert "hookrelay is running" not in third.stdout
        assert processes_under(folder / "other") == []

        # The first dev watches its own servers: one dies, it says so and stops the rest.
        postmaster_of(first.data_dir).send_signal(signal.SIGINT)  # postgres's fast shutdown
        assert await asyncio.to_thread(first.process.wait, 40) == 1
        log = first.log_path.read_text()
        assert "the embedded postgres exited" in log
        assert processes_under(first.data_dir) == []
    finally:
        first.stop()  # closes its log too


def test_ctrl_c_at_any_moment_of_start_up_stops_everything_cleanly(folder: Path) -> None:
    data_dir, log_path = folder / "data", folder / "dev.log"
    # One data dir for every moment: only the first start pays for initdb.
    for moment in ("embedded postgres started", "dev mode:", "database ready"):
        log_path.write_bytes(b"")
        with log_path.open("ab") as log:
            # Its own process group, as a shell gives a foreground job: Ctrl-C reaches them all.
            dev = subprocess.Popen(
                dev_argv(data_dir, free_port()),
                stdout=log, stderr=subprocess.STDOUT, env=dev_env(), start_new_session=True,
            )  # fmt: skip
            try:
                wait_for_line(log_path, moment, dev)
                os.killpg(dev.pid, signal.SIGINT)
                code = dev.wait(timeout=40)
            finally:
                if dev.poll() is None:
                    dev.kill()
                    dev.wait()
        text = log_path.read_text(errors="replace")
        assert code == 0, f"Ctrl-C after {moment!r} gave {code}:\n{text}"
        assert "Traceback" not in text and "uncaught" not in text, text
        assert "hookrelay is running" not in text
        assert processes_under(data_dir) == []
