"""The admin benchmark: finding dead letters among a million deliveries, and replaying 100,000.

Seeds the deliveries with COPY (10 endpoints; one of them has every delivery dead-lettered, the
others 10%), then measures through the API: listing one endpoint's dead deliveries page by page,
listing the app's dead deliveries, and a bulk replay of the dead endpoint's deliveries until the
sink has received every one.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from hookrelay.bench.stack import ADMIN_TOKEN, Api, Stack
from hookrelay.ids import new_id
from hookrelay.statuses import DeliveryStatus
from hookrelay.storage import Storage

ENDPOINTS = 10
REPLAY_TIMEOUT_S = 600.0
COPY_CHUNK = 50_000


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


async def seed(
    database_url: str, app_id: str, endpoint_ids: list[str], events: int, base_ms: int
) -> float:
    """COPY `events` events, one per millisecond from `base_ms`, and one delivery per endpoint
    each; return the seconds it took."""
    started = time.perf_counter()
    storage = await Storage.open(database_url, max_size=1)
    try:
        now = datetime.now(UTC)
        for first in range(0, events, COPY_CHUNK):
            event_rows, delivery_rows = [], []
            for n in range(first, min(events, first + COPY_CHUNK)):
                event_id = new_id("evt_", base_ms + n)
                body = orjson.dumps(
                    {"type": "image.ready", "timestamp": now.isoformat(), "data": {"n": n}}
                ).decode()
                # As maintenance.EVENT_COLUMNS and DELIVERY_COLUMNS say.
                event_rows.append((event_id, app_id, "image.ready", None, body, now))
                for e, endpoint_id in enumerate(endpoint_ids):
                    dead = e == 0 or n % 10 == 0
                    delivery_rows.append(
                        (
                            new_id("dlv_", base_ms + n),
                            app_id,
                            event_id,
                            endpoint_id,
                            DeliveryStatus.DEAD if dead else DeliveryStatus.SUCCEEDED,
                            8 if dead else 1,
                            500 if dead else 200,
                            "the receiver answered 500" if dead else None,
                            now,
                            now,
                            now,
                        )
                    )
            await storage.maintenance.copy_log(event_rows, delivery_rows)
        await storage.maintenance.analyze_log()
    finally:
        await storage.close()
    return time.perf_counter() - started


async def time_listing(api: Api, key: str, path: str, samples: int) -> list[float]:
    """Milliseconds per page, following next_cursor and starting over at the last page."""
    latencies, cursor = [], None
    for _ in range(samples):
        started = time.perf_counter()
        page = await api.call("GET", path + (f"&cursor={cursor}" if cursor else ""), key)
        latencies.append((time.perf_counter() - started) * 1000)
        cursor = page["next_cursor"]
    return latencies


async def run(
    deliveries: int,
    replay: int,
    workers: int,
    samples: int,
    env: Mapping[str, str],
    keep_logs: bool,
) -> dict[str, Any]:
    events = deliveries // ENDPOINTS
    replay = min(replay, events)
    stack = Stack(workers, env, keep_logs)
    await stack.start()
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
            base_ms = round(time.time() * 1000) - events
            seed_s = await seed(stack.database_url, app["id"], endpoint_ids, events, base_ms)
            target = endpoint_ids[0]
            one_endpoint = await time_listing(
                api, key, f"{base}/deliveries?endpoint_id={target}&status=dead&limit=50", samples
            )
            app_wide = await time_listing(
                api, key, f"{base}/deliveries?status=dead&limit=50", samples
            )

            # Replay the newest `replay` dead deliveries of the target endpoint (ids, and so
            # the `since` window, follow the seeded milliseconds).
            window = datetime.fromtimestamp((base_ms + events - replay) / 1000, UTC).isoformat()
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
        stack.close()
    return {
        "deliveries_seeded": events * ENDPOINTS,
        "seed_seconds": round(seed_s, 1),
        "list_one_endpoint_dead_ms": _summary(one_endpoint),
        "list_app_dead_ms": _summary(app_wide),
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


def print_report(figures: dict[str, Any]) -> None:
    replay = figures["replay"]
    rows = [
        (
            "deliveries seeded (COPY)",
            f"{figures['deliveries_seeded']:,} in {figures['seed_seconds']} s",
        ),
        (
            "list one endpoint's dead, p50 / p95",
            "{p50} / {p95} ms (goal p95 <= 20 ms)".format(**figures["list_one_endpoint_dead_ms"]),
        ),
        (
            "list the app's dead, p50 / p95",
            "{p50} / {p95} ms".format(**figures["list_app_dead_ms"]),
        ),
        ("bulk replay: matched / replayed", f"{replay['matched']:,} / {replay['replayed']:,}"),
        ("bulk replay: the API call", f"{replay['api_call_seconds']} s"),
        (
            "bulk replay: until all received",
            f"{replay['until_all_received_seconds']} s, {replay['workers']} workers (goal <= 60 s)",
        ),
        ("sink received / distinct", f"{replay['sink_received']:,} / {replay['sink_unique']:,}"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}")


def main(
    deliveries: int,
    replay: int,
    workers: int,
    samples: int,
    output: Path,
    env: Mapping[str, str],
    keep_logs: bool,
) -> int:
    """Run the benchmark, print and write its figures; 1 if a replayed delivery never arrived."""
    figures = asyncio.run(run(deliveries, replay, workers, samples, env, keep_logs))
    print_report(figures)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"  figures written to {output}")
    return 0 if figures["replay"]["sink_unique"] >= figures["replay"]["replayed"] else 1
