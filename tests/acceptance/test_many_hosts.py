"""Every part on a network host of its own, as an operator would run them: Postgres and Redis on
one host, two API processes behind nginx (the shipped deploy/nginx/hookrelay.conf) on a second,
two workers on a third, the receiver on a fourth and the clients on a fifth. The hosts are
network namespaces on a bridge (see tests/acceptance/hosts.py); the parts reach each other
only over those links, never over loopback.

Under a steady stream of events, one API process and one worker are SIGKILLed: every accepted
event must arrive, and ingest through nginx must keep answering (each event carries an
Idempotency-Key, so nginx may send a POST whose process died to the other one). The test
prints its throughput and the counts of the kill (pytest -s shows them)."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from hookrelay.dev.cluster import stop_processes, wait_until_answers
from hookrelay.dev.embedded import EmbeddedPostgres, EmbeddedRedis
from tests.acceptance.harness import ADMIN_TOKEN
from tests.acceptance.hosts import Host, Network, enter, remove_leftovers, unavailable
from tests.conftest import server_tempdir
from tests.network.proxy import MAIN_CONFIG, SHIPPED_ACCESS_LOG, SHIPPED_CONFIG, nginx_binary
from tests.network.proxy import render as render_nginx

pytestmark = pytest.mark.acceptance

ROLES = ("db", "api", "workers", "receiver", "clients")
# Set, every part runs on one host (one namespace): the same test's figures on a single host.
ONE_HOST = "HOOKRELAY_TEST_ONE_HOST"
API_PORTS = (8081, 8082)
BALANCER_PORT = 8080
RECEIVER_PORT = 9000
# Settings of every process: the receiver's address alone is let past the SSRF rules; a short
# delivery timeout (so a lease, 7 s, runs out soon after its worker dies) and a quick sweeper.
SETTINGS = {
    "LOG_FORMAT": "json",
    "DELIVERY_TIMEOUT": "2s",
    "SWEEP_INTERVAL": "250ms",
    "SWEEP_GRACE": "1s",
}
# The throughput phase: as many events as CONCURRENCY clients get accepted in THROUGHPUT_S.
CONCURRENCY = 16
THROUGHPUT_S = 8.0
# The fault phase: a steady stream for FAULT_S, at half the rate the throughput phase reached
# (within these bounds); SIGKILL an API process, then a worker, at these moments of it.
MAX_RATE = 200.0
MIN_RATE = 20.0
FAULT_S = 12.0
KILL_API_AT_S = 3.0
# Just before that kill, this many events more are sent at once, so that the API process dies
# with requests in flight, which nginx must pass on to the other one.
BURST = 60
BURST_LEAD_S = 0.01
KILL_WORKER_AT_S = 5.0
# The receiver takes a moment over each delivery, so that some are in flight at the kill.
RECEIVER_DELAY_S = 0.02
# A client sends a request that got no 202 again, with the same key, after this pause.
CLIENT_RETRY_S = 0.2
CLIENT_TRIES = 20
CLIENT_TIMEOUT_S = 30.0
# Time for the last deliveries after a phase (the killed worker's leases run out first).
DELIVERY_WAIT_S = 40.0


@dataclass
class Stack:
    """The processes on their hosts; `close()` ends them all, servers last."""

    network: Network
    root: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    env: dict[str, str] = field(default_factory=dict)

    def host(self, role: str) -> Host:
        return self.network.hosts[role]

    def start_servers(self) -> None:
        """Postgres and Redis on the database host, on its address (not loopback)."""
        db = self.host("db")
        self.postgres = EmbeddedPostgres(self.root / "postgres", host=db.address)
        self.redis = EmbeddedRedis(self.root / "redis", host=db.address)
        receiver = self.host("receiver")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKRELAY_")}
        self.env.update({f"HOOKRELAY_{name}": value for name, value in SETTINGS.items()})
        self.env.update(
            HOOKRELAY_DATABASE_URL=db.run(self.postgres.start),
            HOOKRELAY_REDIS_URL=db.run(self.redis.start),
            HOOKRELAY_ADMIN_TOKEN=ADMIN_TOKEN,
            HOOKRELAY_SECRET_KEY=base64.b64encode(os.urandom(32)).decode(),
            HOOKRELAY_ALLOWED_CIDRS=f"{receiver.address}/32",
        )

    def spawn(self, name: str, role: str, *args: str) -> subprocess.Popen[bytes]:
        """Run `hookrelay args` on the host `role` as the process `name`."""
        argv = [sys.executable, "-m", "hookrelay", *args]
        process = self.host(role).popen(argv, self.root / f"{name}.log", self.env)
        self.processes[name] = process
        return process

    def start_parts(self) -> None:
        """Migrate, then two API processes and nginx on the API host, two workers."""
        migrate = self.spawn("migrate", "api", "migrate")
        assert migrate.wait(timeout=60) == 0, self.logs()
        api = self.host("api").address
        for n, port in enumerate(API_PORTS, 1):
            self.spawn(f"api{n}", "api", "api", "--host", api, "--port", str(port))
        for n in (1, 2):
            self.spawn(f"worker{n}", "workers", "worker")
        self.start_nginx()

    def start_nginx(self) -> None:
        binary = nginx_binary()
        assert binary is not None
        folder = self.root / "nginx"
        folder.mkdir()
        folder.chmod(0o755)  # nginx's workers drop root: they must reach their temp folders
        api = self.host("api").address
        config = render_nginx(SHIPPED_CONFIG.read_text(), BALANCER_PORT, list(API_PORTS), api)
        access_log = str(folder / "hookrelay.access.log")
        (folder / "hookrelay.conf").write_text(config.replace(SHIPPED_ACCESS_LOG, access_log))
        (folder / "nginx.conf").write_text(MAIN_CONFIG.format(root=folder))
        argv = [binary, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e", "stderr"]
        self.processes["nginx"] = self.host("api").popen(argv, self.root / "nginx.log", self.env)

    def kill(self, name: str) -> None:
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait()

    def running(self, name: str) -> bool:
        return self.processes[name].poll() is None

    def failovers(self) -> tuple[int, int]:
        """From nginx's error log, the requests an API process failed (each went on to the next
        process, if one was left and its method allowed it): those it had been sent, those
        whose connection was refused."""
        lines = (self.root / "nginx" / "error.log").read_text(errors="replace").splitlines()
        failed = [line for line in lines if "[error]" in line and "upstream" in line]
        refused = sum("while connecting to upstream" in line for line in failed)
        return len(failed) - refused, refused

    def logs(self) -> str:
        texts = (f"== {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in self._logs())
        return "\n".join(texts)

    def _logs(self) -> list[Path]:
        return sorted([*self.root.glob("*.log"), *self.root.glob("nginx/*.log")])

    def close(self) -> None:
        stop_processes(self.processes.values())
        for server in (self.redis, self.postgres):
            if server is not None:
                server.stop()


@pytest.fixture
def stack() -> Iterator[Stack]:
    reason = unavailable()
    if reason is not None:
        pytest.skip(f"the many-hosts test {reason}")
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (make nginx installs Debian's with apt-get)")
    remove_leftovers()
    root = server_tempdir()
    network = Network()
    made = Stack(network, root)
    try:
        if os.environ.get(ONE_HOST):
            network.hosts.update(dict.fromkeys(ROLES, network.add_host("all")))
        for role in ROLES:
            if role not in network.hosts:
                network.add_host(role)
        made.start_servers()
        made.start_parts()
        yield made
    finally:
        made.close()
        network.close()
        shutil.rmtree(root, ignore_errors=True)


class Receiver:
    """The webhook receiver: an aiohttp server on a thread of its own inside the receiver's
    host; it notes the first arrival of each event and counts every request."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.url = f"http://{host.address}:{RECEIVER_PORT}/hook"
        self.requests = 0
        self._first_arrival: dict[str, float] = {}
        self._lock = threading.Lock()  # the clients' thread reads what this one writes
        self._loop = asyncio.new_event_loop()
        self._serving = threading.Event()
        self._error: list[BaseException] = []
        self._thread = threading.Thread(target=self._serve, name="receiver", daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        self._serving.wait(10)
        if self._error or not self._serving.is_set():
            raise AssertionError(f"the receiver did not start: {self._error}")
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        try:
            enter(self.host.namespace)
            app = web.Application()
            app.router.add_post("/hook", self._handle)
            runner = web.AppRunner(app, access_log=None)
            self._loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, self.host.address, RECEIVER_PORT)
            self._loop.run_until_complete(site.start())
        except BaseException as exc:
            self._error.append(exc)
            return
        finally:
            self._serving.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        with self._lock:
            self.requests += 1
            self._first_arrival.setdefault(request.headers["webhook-id"], time.monotonic())
        await asyncio.sleep(RECEIVER_DELAY_S)
        return web.Response(text="ok")

    def first_arrivals(self) -> dict[str, float]:
        """The time each event first arrived, by event id (webhook-id)."""
        with self._lock:
            return dict(self._first_arrival)


class Clients:
    """Providers posting events through nginx, each with an Idempotency-Key, and sending a
    request that got no 202 again with the same key, as a client of the API should."""

    def __init__(self, session: aiohttp.ClientSession, base: str, app: dict[str, Any]) -> None:
        self.session = session
        self.url = f"{base}/v1/apps/{app['id']}/events"
        self.headers = {"Authorization": f"Bearer {app['api_key']}"}
        self.accepted: dict[str, tuple[float, float]] = {}  # event id: (sent, answered) times
        self.keys: dict[str, str] = {}  # idempotency key: event id
        self.failures: list[tuple[float, str]] = []  # (time, what) of each request not a 202
        self.sent = 0

    async def send(self, key: str) -> None:
        self.sent += 1
        body = {"type": "image.ready", "data": {"key": key}}
        headers = {**self.headers, "Idempotency-Key": key}
        started = time.monotonic()
        for _ in range(CLIENT_TRIES):
            try:
                async with self.session.post(self.url, json=body, headers=headers) as response:
                    answer = await response.json()
                    if response.status == 202:
                        self.keys[key] = answer["id"]
                        self.accepted.setdefault(answer["id"], (started, time.monotonic()))
                        return
                    failure = f"{response.status} {answer}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                failure = repr(exc)
            self.failures.append((time.monotonic(), failure))
            await asyncio.sleep(CLIENT_RETRY_S)
        raise AssertionError(f"{key} was not accepted after {CLIENT_TRIES} tries: {failure}")

    async def closed_loop(self, prefix: str, concurrency: int, seconds: float) -> None:
        """`concurrency` clients, each sending its next event as soon as the last is answered."""
        deadline = time.monotonic() + seconds
        counter = iter(range(sys.maxsize))

        async def client() -> None:
            while time.monotonic() < deadline:
                await self.send(f"{prefix}-{next(counter)}")

        await asyncio.gather(*(client() for _ in range(concurrency)))

    async def steady(self, prefix: str, rate: float, seconds: float) -> None:
        """One event every 1/rate s, each on its own task, whatever the answers take."""
        start = time.monotonic()
        sending = []
        for n in range(int(rate * seconds)):
            sending.append(asyncio.create_task(self.send(f"{prefix}-{n}")))
            await asyncio.sleep(max(0.0, start + (n + 1) / rate - time.monotonic()))
        await asyncio.gather(*sending)


async def all_arrived(receiver: Receiver, event_ids: set[str], stack: Stack) -> dict[str, float]:
    """Wait until every one of `event_ids` arrived; the first arrival of each."""
    deadline = time.monotonic() + DELIVERY_WAIT_S
    while missing := event_ids - receiver.first_arrivals().keys():
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(missing)} accepted events never arrived\n{stack.logs()}")
        await asyncio.sleep(0.1)
    arrivals = receiver.first_arrivals()
    return {event_id: arrivals[event_id] for event_id in event_ids}


def ms(seconds: list[float], percent: int) -> float:
    return 1000 * statistics.quantiles(seconds, n=100)[percent - 1]


@dataclass
class Figures:
    throughput: str
    rate: float
    fault: dict[str, Any]


async def scenario(stack: Stack, receiver: Receiver) -> Figures:
    """What the clients' host does: set up an app, measure throughput, send through kills."""
    api = stack.host("api").address
    balancer = f"http://{api}:{BALANCER_PORT}"
    for name, port in [("api1", API_PORTS[0]), ("api2", API_PORTS[1]), ("nginx", BALANCER_PORT)]:
        await wait_until_answers(f"http://{api}:{port}/readyz", stack.processes[name])
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S)
    ) as session:
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with session.post(f"{balancer}/v1/apps", json={"name": "hosts"}, headers=admin) as r:
            assert r.status == 201, await r.text()
            created = await r.json()
        endpoints = f"{balancer}/v1/apps/{created['id']}/endpoints"
        headers = {"Authorization": f"Bearer {created['api_key']}"}
        async with session.post(endpoints, json={"url": receiver.url}, headers=headers) as r:
            assert r.status == 201, await r.text()
        throughput, accepted_per_s = await measure_throughput(
            Clients(session, balancer, created), receiver, stack
        )
        # Under load, but within what this machine just took: a steady stream it cannot keep
        # up with would measure its queue, not the kills.
        rate = min(MAX_RATE, max(MIN_RATE, accepted_per_s / 2))
        fault = await send_through_kills(Clients(session, balancer, created), receiver, stack, rate)
    return Figures(throughput, rate, fault)


async def measure_throughput(
    clients: Clients, receiver: Receiver, stack: Stack
) -> tuple[str, float]:
    """CONCURRENCY clients for THROUGHPUT_S; the figures, and the events accepted a second."""
    started = time.monotonic()
    await clients.closed_loop("throughput", CONCURRENCY, THROUGHPUT_S)
    sending_s = time.monotonic() - started
    arrivals = await all_arrived(receiver, set(clients.accepted), stack)
    assert clients.failures == [], clients.failures[:5]
    count = len(clients.accepted)
    ingest = [answered - sent for sent, answered in clients.accepted.values()]
    delivery = [arrivals[e] - sent for e, (sent, _) in clients.accepted.items()]
    accepted_per_s = count / sending_s
    delivered_per_s = count / (max(arrivals.values()) - started)
    return (
        f"{count} events from {CONCURRENCY} clients in {sending_s:.1f} s: "
        f"accepted {accepted_per_s:.0f}/s, delivered {delivered_per_s:.0f}/s; "
        f"ingest p50/p95 {ms(ingest, 50):.1f}/{ms(ingest, 95):.1f} ms, "
        f"delivery p50/p95 {ms(delivery, 50):.0f}/{ms(delivery, 95):.0f} ms"
    ), accepted_per_s


async def send_through_kills(
    clients: Clients, receiver: Receiver, stack: Stack, rate: float
) -> dict[str, Any]:
    """A steady `rate` for FAULT_S, killing an API process and a worker on the way."""
    requests_before, arrived_before = receiver.requests, set(receiver.first_arrivals())

    async def kill_later(name: str, delay_s: float, burst: int = 0) -> None:
        await asyncio.sleep(delay_s)
        sending = [asyncio.create_task(clients.send(f"burst-{n}")) for n in range(burst)]
        await asyncio.sleep(BURST_LEAD_S if burst else 0)
        stack.kill(name)
        await asyncio.gather(*sending)

    started = time.monotonic()
    await asyncio.gather(
        clients.steady("fault", rate, FAULT_S),
        kill_later("api1", KILL_API_AT_S, BURST),
        kill_later("worker1", KILL_WORKER_AT_S),
    )
    arrivals = await all_arrived(receiver, set(clients.accepted), stack)
    arrived = set(receiver.first_arrivals()) - arrived_before
    return {
        "sent": clients.sent,
        "accepted": len(clients.accepted),
        "failures": clients.failures,
        "lost": len(set(clients.accepted) - arrived),
        "unexpected": len(arrived - set(clients.accepted)),
        "duplicates": receiver.requests - requests_before - len(arrived),
        "all_arrived_after_s": max(arrivals.values()) - started,
        "failovers": stack.failovers(),
    }


@pytest.mark.timeout(180)
def test_parts_on_their_own_hosts_lose_nothing_when_an_api_and_a_worker_are_killed(
    stack: Stack,
) -> None:
    # The machine's load when the test began: the figures are worth what the idle CPU was.
    load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
    with Receiver(stack.host("receiver")) as receiver:
        figures = stack.host("clients").run(asyncio.run, scenario(stack, receiver))

    fault = figures.fault
    shape = "one host" if os.environ.get(ONE_HOST) else "many hosts"
    print(
        f"\n{shape} (load average at the start: {load}), throughput: {figures.throughput}"
        f"\n{shape}, SIGKILL of an API process and a worker under {figures.rate:.0f} events/s "
        f"for {FAULT_S:g} s: {fault['accepted']} of {fault['sent']} accepted, "
        f"{fault['lost']} lost, {fault['duplicates']} duplicates, "
        f"{len(fault['failures'])} failed requests; {fault['failovers'][0]} requests were in "
        f"flight on the killed API and {fault['failovers'][1]} refused by it (nginx's log); "
        f"all arrived {fault['all_arrived_after_s']:.1f} s "
        "after the stream began"
    )
    assert not stack.running("api1") and not stack.running("worker1")
    assert stack.running("api2") and stack.running("worker2") and stack.running("nginx")
    # Whether the burst is still in flight when the API dies depends on the machine's speed
    # (on a quiet one it may all be answered first): the count is printed above, not required.
    assert fault["accepted"] == fault["sent"], "every event is accepted, some on a second try"
    assert fault["lost"] == 0
    assert fault["unexpected"] == 0, "an event was stored twice: a retry was not idempotent"
    assert fault["failures"] == [], fault["failures"][:5]
    assert fault["duplicates"] <= 0.01 * fault["accepted"]
