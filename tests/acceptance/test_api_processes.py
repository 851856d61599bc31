"""`hookrelay api --processes N`: N processes serve one port (SO_REUSEPORT); any of them going
away leaves the others serving it, and a signal to the parent stops them all."""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import aiohttp
import psutil
import pytest

from hookrelay.dev.cluster import wait_until_answers
from tests.acceptance.harness import ADMIN_TOKEN, AcceptanceCluster
from tests.conftest import server_tempdir

PROCESSES = 2


@pytest.fixture
async def cluster() -> AsyncIterator[AcceptanceCluster]:
    root = server_tempdir()
    cluster = AcceptanceCluster(root)
    await cluster.start()
    yield cluster
    cluster.close()
    shutil.rmtree(root, ignore_errors=True)


def listening_on(port: int, process: psutil.Process) -> bool:
    return any(
        c.status == psutil.CONN_LISTEN and c.laddr.port == port
        for c in process.net_connections("tcp")
    )


async def create_app_on_a_new_connection(url: str) -> int:
    """Create an app over a connection of its own (the kernel picks the process per connection)."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{url}/v1/apps",
            json={"name": "p"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as response,
    ):
        return response.status


async def test_processes_share_the_port_and_outlive_each_other(cluster: AcceptanceCluster) -> None:
    parent = cluster.spawn(
        "api", "hookrelay", "api", "--port", str(cluster.api_port), "--processes", str(PROCESSES)
    )
    await wait_until_answers(f"{cluster.url}/readyz", parent)
    children = psutil.Process(parent.pid).children()
    assert len(children) == PROCESSES
    deadline = time.monotonic() + 30
    while not all(listening_on(cluster.api_port, c) for c in children):
        assert time.monotonic() < deadline, "not every API process listens on the port"
        await asyncio.sleep(0.1)
    assert [await create_app_on_a_new_connection(cluster.url) for _ in range(20)] == [201] * 20

    # One process killed: the others take every new connection.
    children[0].kill()
    children[0].wait(10)
    assert [await create_app_on_a_new_connection(cluster.url) for _ in range(20)] == [201] * 20

    # A signal to the parent stops the rest, and the parent.
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(30) is not None
    assert not children[1].is_running() or children[1].status() == psutil.STATUS_ZOMBIE


@pytest.mark.timed  # it must catch the children while they start: alone, not under load
async def test_a_signal_while_the_processes_start_stops_every_one(
    cluster: AcceptanceCluster,
) -> None:
    parent = cluster.spawn(
        "api", "hookrelay", "api", "--port", str(cluster.api_port), "--processes", "16"
    )
    deadline = time.monotonic() + 30
    while not psutil.Process(parent.pid).children():
        assert parent.poll() is None, f"the parent exited ({parent.returncode}):\n{cluster.logs()}"
        assert time.monotonic() < deadline, "no API process started"
        await asyncio.sleep(0.001)
    started = psutil.Process(parent.pid).children()
    parent.send_signal(signal.SIGTERM)  # the others are still starting
    assert parent.wait(30) is not None
    _, alive = psutil.wait_procs(started, timeout=30)
    assert alive == []


def test_a_port_already_taken_is_a_clear_error(cluster: AcceptanceCluster) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "hookrelay", "api", "--port", str(port)],
            env=cluster.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2, done.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
