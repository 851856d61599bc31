"""The throughput benchmark: everything on this machine, measured side by side in one run.

1. The raw ceiling: a bare aiohttp client posting webhook-sized bodies to the same sink.
2. Fixed rates (50, 200 and 1,000 events/s): ingest latency (request to 202) and delivery
   latency (event created to sink received), p50/p95/p99.
3. Single events flat out: concurrent clients each posting one event per request, as fast as
   the API answers, until the sink has them all; the delivery rate and its ratio to the raw
   ceiling.
4. The maximum delivery rate: events sent as fast as batch ingest takes them, until the sink
   has them all; its ratio to the raw ceiling.
5. Fan-out: events that go to 100 endpoints each: ingest latency, and time until all 100 got it.
6. Peak RSS of every process, and the CPU time each used per event (fixed rates, single events
   flat out) and per delivery (maximum rate). Every accepted event must reach the sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
import psutil

from hookrelay.bench.client import Client, ResponseError
from hookrelay.bench.stack import ADMIN_TOKEN, Api, Stack
from hookrelay.settings import Settings
from hookrelay.storage import Storage


@dataclass(frozen=True)
class Plan:
    rates: tuple[int, ...]  # events/s
    seconds: float  # per rate
    single_events: int  # one per request, as fast as the API answers
    max_events: int  # sent as fast as possible for the maximum rate
    fanout_events: int


FULL = Plan(
    rates=(50, 200, 1000), seconds=60.0, single_events=30_000, max_events=60_000, fanout_events=100
)
QUICK = Plan(
    rates=(50, 200, 1000), seconds=10.0, single_events=10_000, max_events=15_000, fanout_events=30
)
# Clients posting single events at once in the flat-out phase.
SINGLE_EVENT_CLIENTS = 64
FANOUT_ENDPOINTS = 100
MAX_RATE_BATCH = 100
MAX_RATE_SENDERS = 4
DRAIN_TIMEOUT_S = 120.0
# A typical job.completed payload: the webhook bodies are about 250 bytes.
DATA = {
    "job_id": "job_0123456789",
    "model": "image-xl-2",
    "output": {"url": "https://cdn.example.com/outputs/0123456789.png", "width": 1024},
}


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0}
    ordered = sorted(values)

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99)}


def process_groups(stack: Stack) -> dict[str, list[psutil.Process]]:
    """The stack's processes by part (api, worker1, sink, postgres, redis), and the benchmark's
    own as `client`; a part made of several processes (Postgres, `api --processes N`) lists
    all of them."""
    groups: dict[str, list[psutil.Process]] = {"client": [psutil.Process()]}
    cluster = stack.cluster
    roots = {name: popen.pid for name, popen in cluster.processes.items()}
    for name, server in (("postgres", cluster.postgres), ("redis", cluster.redis)):
        if server.pid is not None:
            roots[name] = server.pid
    for name, pid in roots.items():
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pid)
            groups[name] = [root, *root.children(recursive=True)]
    return groups


def cpu_seconds(stack: Stack) -> dict[str, float]:
    """The CPU time (user and system) each part of the stack has used so far. A server's
    processes that have exited count too (in its root's reaped children's times), so the
    difference of two readings is what the part used in between."""
    used: dict[str, float] = {}
    for name, processes in process_groups(stack).items():
        total = 0.0
        for n, process in enumerate(processes):
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
                if n == 0 and len(processes) > 1:
                    total += times.children_user + times.children_system
        used[name] = total
    return used


def cpu_us_per(count: int, before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
    """Microseconds of CPU each part used per one of `count` (events, deliveries), and in all."""
    if count == 0:
        return {}
    spent = {name: after[name] - before.get(name, 0.0) for name in after}
    per = {name: round(seconds / count * 1e6) for name, seconds in sorted(spent.items())}
    return per | {"total": round(sum(spent.values()) / count * 1e6)}


class PeakRss:
    """Samples the memory of the stack's processes; keeps each one's peak (MB). A server made
    of several processes (Postgres) is summed by PSS, so shared memory is counted once."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.peaks: dict[str, float] = {}

    def _sample(self) -> None:
        groups = process_groups(self.stack)
        del groups["client"]
        for name, processes in groups.items():
            total = 0
            for process in processes:
                with contextlib.suppress(psutil.Error):
                    if len(processes) == 1:
                        total += process.memory_info().rss
                    else:
                        total += process.memory_full_info().pss
            self.peaks[name] = max(self.peaks.get(name, 0.0), round(total / 2**20, 1))

    async def run(self) -> None:
        while True:
            self._sample()
            await asyncio.sleep(0.5)


async def raw_ceiling(sink_url: str, seconds: float, concurrency: int = 64) -> float:
    """Requests/s a bare aiohttp client gets from the sink with webhook-sized bodies."""
    body = orjson.dumps(
        {"type": "job.completed", "timestamp": "2026-01-01T00:00:00Z", "data": DATA}
    )
    connector = aiohttp.TCPConnector(limit=concurrency)
    done = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.perf_counter() + seconds

        async def post_until_deadline(n: int) -> None:
            nonlocal done
            headers = {
                "content-type": "application/json",
                "webhook-id": f"raw{n}",
                "webhook-timestamp": "1767225600",
                "webhook-signature": "v1,c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXI=",
            }
            while time.perf_counter() < deadline:
                async with session.post(f"{sink_url}/raw", data=body, headers=headers) as r:
                    await r.read()
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(post_until_deadline(n) for n in range(concurrency)))
        elapsed = time.perf_counter() - started
    return done / elapsed


class Bench:
    def __init__(self, stack: Stack, session: aiohttp.ClientSession) -> None:
        self.stack = stack
        self.session = session
        self.api = Api(session, stack.api_url)
        self.key = ""
        self.base = ""
        # Single events go through the lean client (see bench/client.py), each type's
        # request made once.
        api = urlsplit(stack.api_url)
        self.client = Client(api.hostname or "127.0.0.1", api.port or 80)
        self._requests: dict[str, bytes] = {}

    async def setup(self) -> None:
        app = await self.api.call("POST", "/v1/apps", ADMIN_TOKEN, {"name": "bench"})
        self.key, self.base = app["api_key"], f"/v1/apps/{app['id']}"

    async def endpoint(self, path: str, event_type: str) -> None:
        await self.api.call(
            "POST",
            f"{self.base}/endpoints",
            self.key,
            {"url": self.stack.sink_url + path, "event_types": [event_type]},
        )

    async def send(self, event_type: str) -> tuple[float, str, float]:
        """Send one event: (ingest ms, event id, created_at as unix seconds)."""
        request = self._requests.get(event_type)
        if request is None:
            body = orjson.dumps({"type": event_type, "data": DATA})
            headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
            request = self.client.request(f"{self.base}/events", body, headers)
            self._requests[event_type] = request
        started = time.perf_counter()
        status, answer = await self.client.send(request)
        if status != 202:
            raise RuntimeError(f"POST /events: {status} {answer!r}")
        ingest_ms = (time.perf_counter() - started) * 1000
        event = orjson.loads(answer)
        return ingest_ms, event["id"], datetime.fromisoformat(event["created_at"]).timestamp()

    async def drain(self, path: str, expected: int) -> dict[str, float]:
        """Wait until the sink has `expected` distinct webhooks at `path`; their arrivals."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        # The sink is another process: asking it is the only way to see its count.
        while (await self.stack.sink_stats(self.session, path=path))["unique"] < expected:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        stats = await self.stack.sink_stats(self.session, ids=True, path=path)
        arrivals: dict[str, float] = stats["arrivals"].get(path, {})
        return arrivals

    async def fixed_rate(self, rate: int, seconds: float) -> dict[str, Any]:
        path, event_type = f"/rate{rate}", f"bench.rate{rate}"
        await self.endpoint(path, event_type)
        count = int(rate * seconds)
        cpu_before = cpu_seconds(self.stack)
        started = time.perf_counter()
        tasks = []
        for n in range(count):
            await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(self.send(event_type)))
        sent = await asyncio.gather(*tasks, return_exceptions=True)
        accepted = [s for s in sent if isinstance(s, tuple)]
        arrivals = await self.drain(path, len(accepted))
        cpu_used = cpu_us_per(len(arrivals), cpu_before, cpu_seconds(self.stack))
        delivery_ms = [
            (arrivals[event_id] - created) * 1000
            for _, event_id, created in accepted
            if event_id in arrivals
        ]
        return {
            "rate": rate,
            "seconds": seconds,
            "sent": count,
            "accepted": len(accepted),
            "received": len(arrivals),
            "lost": len(accepted) - len(arrivals),
            "ingest_ms": percentiles([ingest for ingest, _, _ in accepted]),
            "delivery_ms": percentiles(delivery_ms),
            "delivery_samples_ms": sorted(round(d, 2) for d in delivery_ms),
            "cpu_us_per_event": cpu_used,
        }

    async def single_flat_out(self, events: int, clients: int) -> dict[str, Any]:
        """`clients` clients post one event per request, each as soon as its last is answered,
        until `events` are sent; then wait until the sink has every accepted one."""
        path, event_type = "/single", "bench.single"
        await self.endpoint(path, event_type)
        unsent = events
        accepted: list[tuple[float, str, float]] = []
        failed = 0

        async def client() -> None:
            nonlocal unsent, failed
            while unsent > 0:
                unsent -= 1
                try:
                    accepted.append(await self.send(event_type))
                except (RuntimeError, ResponseError, OSError):
                    failed += 1

        cpu_before = cpu_seconds(self.stack)
        started = time.time()
        await asyncio.gather(*(client() for _ in range(clients)))
        ingested = time.time() - started
        arrivals = await self.drain(path, len(accepted))
        cpu_used = cpu_us_per(len(arrivals), cpu_before, cpu_seconds(self.stack))
        elapsed = (max(arrivals.values()) if arrivals else time.time()) - started
        return {
            "clients": clients,
            "events": events,
            "accepted": len(accepted),
            "failed": failed,
            "received": len(arrivals),
            "lost": len(accepted) - len(arrivals),
            "ingest_seconds": round(ingested, 2),
            "seconds": round(elapsed, 2),
            "deliveries_per_s": round(len(arrivals) / elapsed, 1),
            "ingest_ms": percentiles([ingest for ingest, _, _ in accepted]),
            "cpu_us_per_event": cpu_used,
        }

    async def max_rate(self, events: int) -> dict[str, Any]:
        path, event_type = "/max", "bench.max"
        await self.endpoint(path, event_type)
        batches = [
            [
                {"type": event_type, "data": {**DATA, "n": n}}
                for n in range(start, start + MAX_RATE_BATCH)
            ]
            for start in range(0, events, MAX_RATE_BATCH)
        ]
        queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        for batch in batches:
            queue.put_nowait(batch)
        accepted = 0

        async def sender() -> None:
            nonlocal accepted
            while not queue.empty():
                batch = queue.get_nowait()
                answer = await self.api.call(
                    "POST", f"{self.base}/events/batch", self.key, {"events": batch}
                )
                accepted += len(answer["data"])

        cpu_before = cpu_seconds(self.stack)
        started = time.time()
        await asyncio.gather(*(sender() for _ in range(MAX_RATE_SENDERS)))
        ingested = time.time() - started
        arrivals = await self.drain(path, accepted)
        cpu_used = cpu_us_per(len(arrivals), cpu_before, cpu_seconds(self.stack))
        # From the first request to the last arrival (the sink stamps arrivals with this clock).
        elapsed = (max(arrivals.values()) if arrivals else time.time()) - started
        return {
            "events": events,
            "accepted": accepted,
            "received": len(arrivals),
            "lost": accepted - len(arrivals),
            "ingest_seconds": round(ingested, 2),
            "seconds": round(elapsed, 2),
            "deliveries_per_s": round(len(arrivals) / elapsed, 1),
            "cpu_us_per_delivery": cpu_used,
        }

    async def fan_out(self, events: int) -> dict[str, Any]:
        event_type = "bench.fanout"
        for n in range(FANOUT_ENDPOINTS):
            await self.endpoint(f"/fan{n}", event_type)
        accepted = []
        for _ in range(events):
            accepted.append(await self.send(event_type))
            await asyncio.sleep(0.1)
        expected = len(accepted)
        all_arrivals: dict[str, list[float]] = {}
        for n in range(FANOUT_ENDPOINTS):
            for event_id, at in (await self.drain(f"/fan{n}", expected)).items():
                all_arrivals.setdefault(event_id, []).append(at)
        complete_ms = [
            (max(all_arrivals[event_id]) - created) * 1000
            for _, event_id, created in accepted
            if len(all_arrivals.get(event_id, [])) == FANOUT_ENDPOINTS
        ]
        received = sum(len(v) for v in all_arrivals.values())
        return {
            "endpoints": FANOUT_ENDPOINTS,
            "events": events,
            "deliveries_expected": expected * FANOUT_ENDPOINTS,
            "deliveries_received": received,
            "lost": expected * FANOUT_ENDPOINTS - received,
            "ingest_ms": percentiles([ingest for ingest, _, _ in accepted]),
            "all_received_ms": percentiles(complete_ms),
        }


async def run(
    quick: bool,
    workers: int,
    api_processes: int,
    partitions: int,
    env: Mapping[str, str],
    keep_logs: bool,
) -> dict[str, Any]:
    # (One worker process is the default on two cores: measured, 1 process sustained the most,
    # then 2, then 3; every process competes with Postgres, Redis, the API and the sink.)
    plan = QUICK if quick else FULL
    stack = Stack(workers, env, keep_logs, api_processes=api_processes)
    await stack.start()
    rss = PeakRss(stack)
    sampling = asyncio.create_task(rss.run())
    try:
        made = await make_partitions(stack, partitions)
        connector = aiohttp.TCPConnector(limit=256)
        async with aiohttp.ClientSession(connector=connector) as session:
            bench = Bench(stack, session)
            await bench.setup()
            try:
                ceiling = await raw_ceiling(stack.sink_url, min(plan.seconds, 10.0))
                rates = [await bench.fixed_rate(r, plan.seconds) for r in plan.rates]
                single = await bench.single_flat_out(plan.single_events, SINGLE_EVENT_CLIENTS)
                maximum = await bench.max_rate(plan.max_events)
                fan_out = await bench.fan_out(plan.fanout_events)
            finally:
                bench.client.close()
    finally:
        sampling.cancel()
        stack.close()
    for flat_out in (single, maximum):
        flat_out["ratio_to_raw_ceiling"] = round(flat_out["deliveries_per_s"] / ceiling, 3)
    return {
        "mode": "quick" if quick else "full",
        "machine": machine(),
        "workers": workers,
        "api_processes": api_processes,
        "partitions_per_table": made,
        "raw_ceiling_per_s": round(ceiling, 1),
        "fixed_rates": rates,
        "single_flat_out": single,
        "max_rate": maximum,
        "fan_out": fan_out,
        "peak_rss_mb": rss.peaks,
        "losses": sum(r["lost"] for r in rates)
        + single["lost"]
        + maximum["lost"]
        + fan_out["lost"],
    }


async def make_partitions(stack: Stack, intervals: int) -> int:
    """Make the log's partitions of the next `intervals` intervals (as many as a log kept that
    long has behind it: every partition a statement may reach costs its planning); the number
    of partitions each table then has."""
    storage = await Storage.open(stack.database_url, max_size=1)
    try:
        if intervals:
            interval_s = Settings.from_env(stack.cluster.env()).partition_interval_s
            later_ms = round(time.time() * 1000 + intervals * interval_s * 1000)
            await storage.partitions.make_ahead(later_ms, interval_s)
        return len(await storage.partitions.of("deliveries"))
    finally:
        await storage.close()


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
    }


def report(figures: dict[str, Any]) -> str:
    lines = [
        f"hookrelay benchmark ({figures['mode']}), {figures['api_processes']} API and "
        f"{figures['workers']} worker processes, "
        f"{figures['machine']['cpus']} CPUs ({figures['machine']['cpu']})",
        "",
        f"raw ceiling (bare aiohttp client -> sink): {figures['raw_ceiling_per_s']:,.0f} req/s",
        "",
        "| rate | sent | lost | ingest p50 / p95 / p99 ms | delivery p50 / p95 / p99 ms |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in figures["fixed_rates"]:
        ingest, delivery = r["ingest_ms"], r["delivery_ms"]
        lines.append(
            f"| {r['rate']}/s | {r['sent']:,} | {r['lost']} | "
            f"{ingest['p50']} / {ingest['p95']} / {ingest['p99']} | "
            f"{delivery['p50']} / {delivery['p95']} / {delivery['p99']} |"
        )
    m, f, s = figures["max_rate"], figures["fan_out"], figures["single_flat_out"]
    lines += [
        "",
        f"single events flat out ({s['clients']} clients, one event per request): "
        f"{s['deliveries_per_s']:,.0f}/s ({s['received']:,} events in {s['seconds']} s; "
        f"{s['ratio_to_raw_ceiling']:.2f} x the raw ceiling); ingest p50/p95/p99 "
        f"{s['ingest_ms']['p50']} / {s['ingest_ms']['p95']} / {s['ingest_ms']['p99']} ms; "
        f"failed {s['failed']}, lost {s['lost']}",
        f"max delivery rate: {m['deliveries_per_s']:,.0f}/s ({m['received']:,} events in "
        f"{m['seconds']} s; {m['ratio_to_raw_ceiling']:.2f} x the raw ceiling); lost {m['lost']}",
        f"fan-out to {f['endpoints']} endpoints ({f['events']} events): ingest p50/p95/p99 "
        f"{f['ingest_ms']['p50']} / {f['ingest_ms']['p95']} / {f['ingest_ms']['p99']} ms; "
        f"all {f['endpoints']} received p50/p95 {f['all_received_ms']['p50']} / "
        f"{f['all_received_ms']['p95']} ms; lost {f['lost']}",
        "CPU per single event at the highest fixed rate (us): "
        + ", ".join(f"{k} {v}" for k, v in figures["fixed_rates"][-1]["cpu_us_per_event"].items()),
        "CPU per single event flat out (us): "
        + ", ".join(f"{k} {v}" for k, v in s["cpu_us_per_event"].items()),
        "CPU per delivery at the maximum rate, batch ingest (us): "
        + ", ".join(f"{k} {v}" for k, v in m["cpu_us_per_delivery"].items()),
        "peak RSS (MB): "
        + ", ".join(f"{name} {mb}" for name, mb in sorted(figures["peak_rss_mb"].items())),
        f"losses in all: {figures['losses']}",
    ]
    return "\n".join(lines)


def plot(figures: dict[str, Any], path: Path) -> None:
    """Delivery latency, as a distribution per fixed rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5))
    for r in figures["fixed_rates"]:
        samples = r["delivery_samples_ms"]
        if samples:
            shares = [(n + 1) / len(samples) for n in range(len(samples))]
            axes.plot(samples, shares, label=f"{r['rate']} events/s")
    axes.set_xscale("log")
    axes.set_xlabel("delivery latency, event created to sink received (ms, log scale)")
    axes.set_ylabel("share of deliveries")
    axes.set_title("hookrelay delivery latency")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)


def main(
    quick: bool,
    workers: int,
    api_processes: int,
    partitions: int,
    output: Path,
    plot_path: Path | None,
    env: Mapping[str, str],
    keep_logs: bool,
) -> int:
    """Run the benchmark, print and write its figures; 1 if any accepted event was lost or
    any single-event request failed."""
    figures = asyncio.run(run(quick, workers, api_processes, partitions, env, keep_logs))
    print(report(figures))
    output.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        **figures,
        "fixed_rates": [
            {k: v for k, v in r.items() if k != "delivery_samples_ms"}
            for r in figures["fixed_rates"]
        ],
    }
    output.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"figures written to {output}")
    if plot_path is not None:
        plot(figures, plot_path)
        print(f"latency plot written to {plot_path}")
    return 0 if figures["losses"] == 0 and figures["single_flat_out"]["failed"] == 0 else 1
