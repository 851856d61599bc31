"""`hookrelay dev` as a real process: embedded servers, the API, a worker, a real receiver."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
from standardwebhooks.webhooks import Webhook

from hookrelay.dev.cluster import free_port
from tests.conftest import server_tempdir
from tests.receiver import Receiver

pytestmark = pytest.mark.acceptance

START_TIMEOUT_S = 90.0


class DevGateway:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / "dev.log"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKRELAY_")}
        env["HOOKRELAY_RETRY_SCHEDULE"] = "50ms,100ms"
        self.log = open(self.log_path, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hookrelay",
                "dev",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )

    async def wait_ready(self) -> None:
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
        async with aiohttp.ClientSession() as session:
            while True:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise AssertionError(f"hookrelay dev exited:\n{self.log_path.read_text()}")
                try:
                    async with session.get(f"{self.url}/readyz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"hookrelay dev not ready:\n{self.log_path.read_text()}")
                await asyncio.sleep(0.2)

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self.log.close()
        return code

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "admin_token").read_text().strip()


def processes_under(data_dir: Path) -> list[psutil.Process]:
    """Server processes whose command line names the data dir (postgres, redis-server)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(data_dir) in cmdline and "pytest" not in cmdline:
            found.append(process)
    return found


@pytest.fixture
def gateway() -> Iterator[DevGateway]:
    folder = server_tempdir()
    dev = DevGateway(folder / "data")
    dev.start()
    yield dev
    if dev.process is not None and dev.process.poll() is None:
        dev.stop()
    shutil.rmtree(folder, ignore_errors=True)


async def call(
    session: aiohttp.ClientSession, method: str, url: str, token: str, body: Any = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with session.request(method, url, json=body, headers=headers) as response:
        return response.status, await response.json()


async def test_dev_delivers_one_event_to_the_matching_endpoints(
    gateway: DevGateway, receiver: Receiver
) -> None:
    await gateway.wait_ready()
    async with aiohttp.ClientSession() as session:
        status, app = await call(
            session, "POST", f"{gateway.url}/v1/apps", gateway.admin_token, {"name": "acme"}
        )
        assert status == 201
        key, base = app["api_key"], f"{gateway.url}/v1/apps/{app['id']}"
        endpoints = {}
        for path, types in (
            ("/all", None),
            ("/completed", ["job.completed"]),
            ("/failed", ["job.failed"]),
        ):
            status, endpoint = await call(
                session,
                "POST",
                f"{base}/endpoints",
                key,
                {"url": receiver.url + path, "event_types": types},
            )
            assert status == 201
            endpoints[path] = endpoint
        status, event = await call(
            session,
            "POST",
            f"{base}/events",
            key,
            {"type": "job.completed", "data": {"job_id": "job_42", "output": {"text": "hi"}}},
        )
        assert status == 202

        await receiver.wait_for(2, timeout_s=15)
        await asyncio.sleep(0.3)  # a wrong third delivery would have arrived by now
        assert sorted(r.path for r in receiver.requests) == ["/all", "/completed"]
        for received in receiver.requests:
            payload = Webhook(endpoints[received.path]["secret"]).verify(
                received.body, received.headers
            )
            assert received.headers["webhook-id"] == event["id"]
            assert set(json.loads(received.body)) == {"type", "timestamp", "data"}
            assert payload["data"] == {"job_id": "job_42", "output": {"text": "hi"}}
    # The banner, printed once the API answered, names the schedule this process runs with.
    assert (
        "retries after 50ms, 100ms (+/-20% jitter), then dead-lettered"
        in gateway.log_path.read_text()
    )


async def test_dev_keeps_data_across_a_restart_and_leaves_no_servers(
    gateway: DevGateway,
) -> None:
    await gateway.wait_ready()
    async with aiohttp.ClientSession() as session:
        status, app = await call(
            session, "POST", f"{gateway.url}/v1/apps", gateway.admin_token, {"name": "kept"}
        )
        assert status == 201
    assert processes_under(gateway.data_dir), "the embedded servers should be running"
    assert gateway.stop() == 0
    assert processes_under(gateway.data_dir) == []

    gateway.start()
    await gateway.wait_ready()
    async with aiohttp.ClientSession() as session:
        status, got = await call(
            session, "GET", f"{gateway.url}/v1/apps/{app['id']}", gateway.admin_token
        )
    assert status == 200
    assert got["name"] == "kept"
    assert gateway.stop() == 0
    assert processes_under(gateway.data_dir) == []
