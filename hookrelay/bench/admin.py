"""The admin benchmark: finding dead letters among ten million deliveries, and replaying 100,000.

Seeds the deliveries with COPY (10 endpoints; one of them has every delivery dead-lettered, the
others 10%), spread evenly over many partitions of the log as a log kept for a while is, then
measures through the API: listing one endpoint's dead deliveries page by page (from the newest,
and from pages anywhere in the log), listing the app's dead deliveries, and a bulk replay of the
dead endpoint's newest deliveries until the sink has received every one.

Partitions are only ever made ahead of the clock (the table as it was before partitioning holds
everything before the cutover), so the seeded ids span the partitions made ahead for the next
`partitions` intervals: the log's time lies ahead of the clock by up to that span. A replay is
made now, so its id sorts before its original's, which no real replay does; the measured
listings are taken before any replay exists, and a bulk replay finds its originals by their ids.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import statistics
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from hookrelay.api.handlers.pages import CONSOLE_ASSETS, CONSOLE_PATH
from hookrelay.bench.stack import ADMIN_TOKEN, Api, Stack
from hookrelay.durations import format_duration
from hookrelay.ids import id_bound, new_id
from hookrelay.statuses import DeliveryStatus
from hookrelay.storage import Storage

ENDPOINTS = 10
REPLAY_TIMEOUT_S = 600.0
COPY_CHUNK = 20_000  # events per COPY (and ENDPOINTS times as many deliveries)
COPIES_AT_ONCE = 2  # Postgres loads one chunk while the next one is made
PAGE = 50  # deliveries per listed page


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def event_ms(n: int, events: int, base_ms: int, span_ms: int) -> int:
    """The millisecond of the `n`th of `events` events spread evenly over `span_ms` from
    `base_ms` (every event its own millisecond while the span has as many)."""
    return base_ms + n * span_ms // events


def seed_rows(
    app_id: str,
    endpoint_ids: Sequence[str],
    numbers: range,
    events: int,
    base_ms: int,
    span_ms: int,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The rows of events `numbers` (as maintenance.EVENT_COLUMNS say) and of their deliveries,
    one per endpoint (DELIVERY_COLUMNS): all of the first endpoint's dead, and every tenth
    event's to the others. Each row is made at its id's time."""
    event_rows, delivery_rows = [], []
    for n in numbers:
        ms = event_ms(n, events, base_ms, span_ms)
        at = datetime.fromtimestamp(ms / 1000, UTC)
        event_id = new_id("evt_", ms)
        body = orjson.dumps(
            {"type": "image.ready", "timestamp": at.isoformat(), "data": {"n": n}}
        ).decode()
        event_rows.append((event_id, app_id, "image.ready", None, body, at))
        for e, endpoint_id in enumerate(endpoint_ids):
            dead = e == 0 or n % 10 == 0
            delivery_rows.append(
                (
                    new_id("dlv_", ms),
                    app_id,
                    event_id,
                    endpoint_id,
                    DeliveryStatus.DEAD if dead else DeliveryStatus.SUCCEEDED,
                    8 if dead else 1,
                    500 if dead else 200,
                    "the receiver answered 500" if dead else None,
                    at,
                    at,
                    at,
                )
            )
    return event_rows, delivery_rows


async def seed(
    storage: Storage,
    app_id: str,
    endpoint_ids: list[str],
    events: int,
    base_ms: int,
    span_ms: int,
) -> float:
    """COPY `events` events spread over `span_ms` from `base_ms`, and one delivery per
    endpoint each; return the seconds it took (vacuumed, statistics refreshed and its pages
    written out, as a log kept for a while is)."""
    started = time.perf_counter()
    copying: set[asyncio.Task[None]] = set()
    for first in range(0, events, COPY_CHUNK):
        numbers = range(first, min(events, first + COPY_CHUNK))
        # Made in a thread, so that the COPYs under way go on meanwhile.
        rows = await asyncio.to_thread(
            seed_rows, app_id, endpoint_ids, numbers, events, base_ms, span_ms
        )
        while len(copying) >= COPIES_AT_ONCE:
            done, copying = await asyncio.wait(copying, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # a failed COPY stops the benchmark
        copying.add(asyncio.create_task(storage.maintenance.copy_log(*rows)))
    for task in copying:
        await task
    await storage.maintenance.vacuum_log()
    await storage.maintenance.checkpoint()
    return time.perf_counter() - started


def cursor_at(ms: int) -> str:
    """A listing's cursor that continues with the deliveries made before `ms`."""
    delivery_id = id_bound("dlv_", ms) + "0" * 20
    return base64.urlsafe_b64encode(delivery_id.encode()).decode().rstrip("=")


async def time_listing(api: Api, key: str, path: str, samples: int) -> list[float]:
    """Milliseconds per page, following next_cursor and starting over at the last page."""
    latencies, cursor = [], None
    for _ in range(samples):
        started = time.perf_counter()
        page = await api.call("GET", path + (f"&cursor={cursor}" if cursor else ""), key)
        latencies.append((time.perf_counter() - started) * 1000)
        cursor = page["next_cursor"]
    return latencies


async def time_pages_anywhere(api: Api, key: str, path: str, cursors: Sequence[str]) -> list[float]:
    """Milliseconds per page, each from one of `cursors` (pages deep in the log)."""
    latencies = []
    for cursor in cursors:
        started = time.perf_counter()
        await api.call("GET", f"{path}&cursor={cursor}", key)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def console_screens(base: str, endpoint_id: str) -> dict[str, list[list[str]]]:
    """The calls each screen of the console makes (hookrelay/console/views.js): steps one
    after another, the calls of a step at once. The page's own files first, as a browser
    without a cache fetches them."""
    endpoint = f"{base}/endpoints/{endpoint_id}"
    return {
        "page files": [[CONSOLE_PATH], [f"{CONSOLE_PATH}/{name}" for name in CONSOLE_ASSETS]],
        "apps": [["/v1/me"], [f"/v1/apps?limit={PAGE}"], [f"{base}/summary"]],
        "an app's endpoints": [[base], [f"{base}/summary", f"{base}/endpoints?limit=250"]],
        "an endpoint": [[base], [endpoint], [f"{endpoint}/stats"], [endpoint]],
        "dead letters": [
            [base],
            [f"{base}/endpoints?limit=250"],
            [f"{base}/deliveries?status=dead&lost=true&limit={PAGE}"],
        ],
        "deliveries": [
            [base],
            [f"{base}/endpoints?limit=250"],
            [f"{base}/deliveries?limit={PAGE}"],
        ],
    }


async def time_screen(
    session: aiohttp.ClientSession, api_url: str, steps: list[list[str]], samples: int
) -> list[float]:
    """Milliseconds to make a screen's calls as the console makes them, `samples` times."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    async def fetch(path: str) -> None:
        async with session.get(api_url + path, headers=headers) as response:
            if response.status != 200:
                raise RuntimeError(f"GET {path}: {response.status} {await response.text()}")
            await response.read()

    latencies = []
    for _ in range(samples):
        started = time.perf_counter()
        for step in steps:
            await asyncio.gather(*(fetch(path) for path in step))
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


async def run(
    deliveries: int,
    replay: int,
    workers: int,
    samples: int,
    partitions: int,
    interval_s: float,
    env: Mapping[str, str],
    keep_logs: bool,
) -> dict[str, Any]:
    events = deliveries // ENDPOINTS
    replay = min(replay, events)
    span_ms = round(partitions * interval_s * 1000)
    stack = Stack(workers, env, keep_logs, {"partition_interval": format_duration(interval_s)})
    await stack.start()
    storage = await Storage.open(stack.database_url, max_size=COPIES_AT_ONCE)
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, stack.api_url)
            app = await api.call("POST", "/v1/apps", ADMIN_TOKEN, {"name": "bench"})
            key, base = app["api_key"], f"/v1/apps/{app['id']}"
            endpoint_ids = [
                (
                    await api.call(
                        "POST", f"{base}/endpoints", key, {"url": f"{stack.sink_url}/{n}"}
                    )
                )["id"]
                for n in range(ENDPOINTS)
            ]
            # The seeded ids start where the first partition ends (the cutover, at most a
            # minute ahead) and span the partitions made ahead for them.
            made_at = time.perf_counter()
            first = await storage.partitions.of("deliveries")
            base_ms = max(round(time.time() * 1000), first[0].upper_ms)
            await storage.partitions.make_ahead(base_ms + span_ms, interval_s)
            partition_s = time.perf_counter() - made_at
            seed_s = await seed(storage, app["id"], endpoint_ids, events, base_ms, span_ms)
            holding = [
                p
                for p in await storage.partitions.of("deliveries")
                if p.upper_ms > base_ms and (p.lower_ms or 0) < base_ms + span_ms
            ]
            load = os.getloadavg()
            target = endpoint_ids[0]
            one_endpoint = f"{base}/deliveries?endpoint_id={target}&status=dead&limit={PAGE}"
            app_wide = f"{base}/deliveries?status=dead&limit={PAGE}"
            anywhere = [
                cursor_at(base_ms + (n + 1) * span_ms // (samples + 1)) for n in range(samples)
            ]
            timed = {
                "one_endpoint": await time_listing(api, key, one_endpoint, samples),
                "one_endpoint_anywhere": await time_pages_anywhere(
                    api, key, one_endpoint, anywhere
                ),
                "app": await time_listing(api, key, app_wide, samples),
                "app_anywhere": await time_pages_anywhere(api, key, app_wide, anywhere),
            }
            screens = {
                name: await time_screen(session, stack.api_url, steps, samples)
                for name, steps in console_screens(base, target).items()
            }

            # Replay the newest `replay` dead deliveries of the target endpoint (ids, and so
            # the `since` window, follow the seeded milliseconds).
            since_ms = event_ms(events - replay, events, base_ms, span_ms)
            window = datetime.fromtimestamp(since_ms / 1000, UTC).isoformat()
            started = time.perf_counter()
            result = await api.call(
                "POST",
                f"{base}/deliveries/replay",
                key,
                {"endpoint_id": target, "status": "dead", "since": window},
            )
            call_s = time.perf_counter() - started
            deadline = time.monotonic() + REPLAY_TIMEOUT_S
            # The sink is another process: asking it is the only way to see its count.
            while (await stack.sink_stats(session))["unique"] < result["replayed"]:
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            replay_s = time.perf_counter() - started
            received = await stack.sink_stats(session)
            await asyncio.sleep(1.2)  # one flush of the workers' counters
            counters = await stack.counters(session)
    finally:
        await storage.close()
        stack.close()
    return {
        "deliveries_seeded": events * ENDPOINTS,
        "seed_seconds": round(seed_s, 1),
        "partitions": {
            "interval_seconds": interval_s,
            "holding_the_seeded_deliveries": len(holding),
            "made_ahead_seconds": round(partition_s, 1),
        },
        "load_average_before_measuring": [round(n, 2) for n in load],
        "list_one_endpoint_dead_ms": _summary(timed["one_endpoint"]),
        "list_one_endpoint_dead_anywhere_ms": _summary(timed["one_endpoint_anywhere"]),
        "list_app_dead_ms": _summary(timed["app"]),
        "list_app_dead_anywhere_ms": _summary(timed["app_anywhere"]),
        "console_screen_ms": {name: _summary(values) for name, values in screens.items()},
        "replay": {
            "matched": result["matched"],
            "replayed": result["replayed"],
            "api_call_seconds": round(call_s, 2),
            "until_all_received_seconds": round(replay_s, 1),
            "sink_received": received["received"],
            "sink_unique": received["unique"],
            "workers": workers,
        },
        "worker_counters": counters,
    }


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values), 2),
        "p95": round(percentile(values, 0.95), 2),
        "max": round(max(values), 2),
    }


def report(figures: dict[str, Any]) -> str:
    """The figures as the table the benchmark prints."""
    replay, partitions = figures["replay"], figures["partitions"]
    listing = "{p50} / {p95} ms (goal p95 <= 10 ms)"
    rows = [
        (
            "deliveries seeded (COPY, vacuum, checkpoint)",
            f"{figures['deliveries_seeded']:,} in {figures['seed_seconds']} s",
        ),
        (
            "partitions holding them",
            f"{partitions['holding_the_seeded_deliveries']}"
            f" of {partitions['interval_seconds'] / 60:g} min",
        ),
        (
            "load average before measuring",
            " / ".join(str(n) for n in figures["load_average_before_measuring"]),
        ),
        (
            "list one endpoint's dead, p50 / p95",
            listing.format(**figures["list_one_endpoint_dead_ms"]),
        ),
        (
            "  a page anywhere, p50 / p95",
            listing.format(**figures["list_one_endpoint_dead_anywhere_ms"]),
        ),
        ("list the app's dead, p50 / p95", listing.format(**figures["list_app_dead_ms"])),
        ("  a page anywhere, p50 / p95", listing.format(**figures["list_app_dead_anywhere_ms"])),
        *(
            (f"console, {name}: its calls, p50 / p95", "{p50} / {p95} ms".format(**values))
            for name, values in figures["console_screen_ms"].items()
        ),
        ("bulk replay: matched / replayed", f"{replay['matched']:,} / {replay['replayed']:,}"),
        ("bulk replay: the API call", f"{replay['api_call_seconds']} s"),
        (
            "bulk replay: until all received",
            f"{replay['until_all_received_seconds']} s, {replay['workers']} workers (goal <= 30 s)",
        ),
        ("sink received / distinct", f"{replay['sink_received']:,} / {replay['sink_unique']:,}"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name.ljust(width)}  {value}" for name, value in rows)


def main(
    deliveries: int,
    replay: int,
    workers: int,
    samples: int,
    partitions: int,
    interval_s: float,
    output: Path,
    env: Mapping[str, str],
    keep_logs: bool,
) -> int:
    """Run the benchmark, print and write its figures; 1 if a replayed delivery never arrived."""
    figures = asyncio.run(
        run(deliveries, replay, workers, samples, partitions, interval_s, env, keep_logs)
    )
    print(report(figures))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"  figures written to {output}")
    return 0 if figures["replay"]["sink_unique"] >= figures["replay"]["replayed"] else 1
