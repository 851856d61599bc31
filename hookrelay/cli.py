"""The `hookrelay` command: dev, api, worker, migrate. The only reader of the environment."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
from pathlib import Path

from hookrelay.embedded import EmbeddedServerError
from hookrelay.logs import configure_logging
from hookrelay.settings import ConfigError, Settings

DEFAULT_PORT = 8080
# Garbage collection thresholds for the long-running processes (Python's defaults: 700, 10, 10).
GC_THRESHOLDS = (50_000, 20, 10)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hookrelay", description="The event-callback gateway for AI jobs."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser("dev", help="run everything locally on embedded Postgres and Redis")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=DEFAULT_PORT)
    dev.add_argument("--data-dir", type=Path, default=Path(".hookrelay"))
    api = commands.add_parser("api", help="run the HTTP API")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=DEFAULT_PORT)
    worker = commands.add_parser("worker", help="run a delivery worker")
    worker.add_argument(
        "--processes", type=int, default=1, help="worker processes to run (one per core at most)"
    )
    commands.add_parser("migrate", help="apply database migrations")
    commands.add_parser(
        "rotate-key", help="re-encrypt endpoint secrets with the current HOOKRELAY_SECRET_KEY"
    )
    bench = commands.add_parser("bench", help="run a benchmark and print its figures")
    benches = bench.add_subparsers(dest="bench", required=True)
    run = benches.add_parser("run", help="latency at fixed rates, max rate, fan-out, memory")
    run.add_argument("--quick", action="store_true", help="10 s per rate instead of 60 s")
    run.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    run.add_argument("--output", type=Path, default=Path("bench-results/latest.json"))
    run.add_argument("--plot", type=Path, default=None, help="write a latency plot (PNG) here")
    admin = benches.add_parser("admin", help="dead letters among a million deliveries; replay")
    admin.add_argument("--deliveries", type=int, default=1_000_000)
    admin.add_argument("--replay", type=int, default=100_000)
    admin.add_argument("--workers", type=int, default=2)
    admin.add_argument("--samples", type=int, default=200)
    admin.add_argument("--output", type=Path, default=Path("bench-results/admin.json"))
    receive = commands.add_parser("receive", help="run a local receiver that verifies webhooks")
    receive.add_argument("--host", default="127.0.0.1")
    receive.add_argument("--port", type=int, default=9000)
    receive.add_argument("--secret", help="the endpoint's whsec_ secret, to verify signatures")
    receive.add_argument("--status", type=int, default=200, help="the status code to answer")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    env = dict(os.environ)
    if args.command == "dev":
        env.setdefault("HOOKRELAY_LOG_FORMAT", "console")
    try:
        settings = Settings.from_env(env)
        configure_logging(settings.log_format, settings.log_level, settings.secret_values())
        return _run(args, settings)
    except (ConfigError, EmbeddedServerError) as exc:
        print(f"hookrelay: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "dev":
        from hookrelay.dev import run_dev

        return run_dev(settings, args.data_dir, args.host, args.port)
    if args.command == "bench" and args.bench == "run":
        from hookrelay.bench import gateway

        return gateway.main(args.quick, args.workers, args.output, args.plot)
    if args.command == "bench":
        from hookrelay.bench import admin

        return admin.main(args.deliveries, args.replay, args.workers, args.samples, args.output)
    if args.command == "receive":
        from hookrelay.receive import run_receiver

        run_receiver(args.host, args.port, args.secret, args.status)
        return 0
    _install_uvloop()
    _collect_garbage_less_often()
    if args.command == "migrate":
        from hookrelay.migrate import migrate

        applied = asyncio.run(migrate(settings.require_database_url()))
        print(
            f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else "")
        )
        return 0
    if args.command == "rotate-key":
        return asyncio.run(_rotate_key(settings))
    if args.command == "api":
        from hookrelay.api.app import create_app
        from hookrelay.api.server import run_api

        settings.require_database_url(), settings.require_redis_url(), settings.require_secret_key()
        run_api(create_app(settings), args.host, args.port)
        return 0
    if args.command == "worker" and args.processes > 1:
        return _run_worker_processes(args.processes)
    if args.command == "worker":
        from hookrelay.worker.main import run_worker

        settings.require_database_url(), settings.require_redis_url(), settings.require_secret_key()
        asyncio.run(run_worker(settings))
        return 0
    raise AssertionError(args.command)


async def _rotate_key(settings: Settings) -> int:
    from hookrelay.rekey import reseal_all
    from hookrelay.store import Store

    store = await Store.open(settings.require_database_url())
    try:
        count = await reseal_all(store, settings.secret_box())
    finally:
        await store.close()
    print(f"re-encrypted the secrets of {count} endpoint(s)")
    return 0


def _run_worker_processes(count: int) -> int:
    """Run `count` worker processes; pass SIGINT/SIGTERM on to them and wait for all."""
    import signal
    import subprocess

    argv = [sys.executable, "-m", "hookrelay", "worker"]
    children = [subprocess.Popen(argv) for _ in range(count)]

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    return max(child.wait() for child in children)


def _collect_garbage_less_often() -> None:
    """A server allocates many short-lived objects for each request and delivery. With Python's
    default threshold (a collection every 700 allocations) the worker spent about a tenth of
    its CPU in collections at full load. What start-up loaded lives as long as the process, so
    collections need not scan it at all."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # not on every platform; asyncio's own loop works too
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
