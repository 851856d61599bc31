"""The `hookrelay` command: dev, api, worker, migrate, rotate-key, bench (run, admin, soak)
and receive. The only reader of the environment."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
from contextlib import suppress
from pathlib import Path

from hookrelay import __version__
from hookrelay.dev.embedded import EmbeddedServerError
from hookrelay.durations import parse_duration
from hookrelay.logs import configure_logging
from hookrelay.settings import ConfigError, Settings
from hookrelay.variables import parse_whole_minutes

DEFAULT_PORT = 8080
# Every option's help ends with its default, as argparse writes it.
HELP_FORMATTER = argparse.ArgumentDefaultsHelpFormatter
# Garbage collection thresholds for the long-running processes (Python's defaults: 700, 10, 10).
GC_THRESHOLDS = (50_000, 20, 10)
# prctl's option that sends a process a signal when its parent dies (linux/prctl.h).
PR_SET_PDEATHSIG = 1


def http_status(text: str) -> int:
    """An HTTP status a receiver can answer with (200-599), for argparse."""
    try:
        status = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 200 <= status <= 599:
        raise argparse.ArgumentTypeError(f"{status} is not an HTTP status from 200 to 599")
    return status


def positive_duration(text: str) -> float:
    """A duration (`2m`, `30s`) longer than zero, in seconds, for argparse."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not longer than zero")
    return seconds


def positive_number(text: str) -> float:
    """A number above zero, for argparse."""
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < number < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a number above zero")
    return number


def non_negative_int(text: str) -> int:
    """A whole number, zero or more, for argparse."""
    return _whole_number(text, 0)


def positive_int(text: str) -> int:
    """A whole number above zero, for argparse."""
    return _whole_number(text, 1)


def _whole_number(text: str, least: int) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if number < least:
        raise argparse.ArgumentTypeError(f"{text} is below {least}")
    return number


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hookrelay",
        description="The event-callback gateway for AI jobs.",
        formatter_class=HELP_FORMATTER,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # Not required: a bare `hookrelay` prints this help and exits 0.
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(
        parent: argparse._SubParsersAction[argparse.ArgumentParser], name: str, what: str
    ) -> argparse.ArgumentParser:
        description = what[0].upper() + what[1:] + "."
        return parent.add_parser(
            name, help=what, description=description, formatter_class=HELP_FORMATTER
        )

    dev = command(commands, "dev", "run everything locally on embedded Postgres and Redis")
    dev.add_argument("--host", default="127.0.0.1", help="address the API listens on")
    dev.add_argument("--port", type=int, default=DEFAULT_PORT, help="port of the API")
    dev.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".hookrelay"),
        help="folder of the embedded servers' data, the admin token and the secret key",
    )
    api = command(commands, "api", "run the HTTP API (configured by HOOKRELAY_* variables)")
    api.add_argument("--host", default="127.0.0.1", help="address to listen on")
    api.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    api.add_argument(
        "--processes",
        type=positive_int,
        default=1,
        help="API processes sharing the port (SO_REUSEPORT; one per core at most)",
    )
    api.add_argument(
        "--reuse-port",
        action="store_true",
        help="let other processes listen on the same port (SO_REUSEPORT), as --processes does",
    )
    worker = command(commands, "worker", "run a delivery worker")
    worker.add_argument(
        "--processes",
        type=positive_int,
        default=1,
        help="worker processes to run (one per core at most)",
    )
    command(commands, "migrate", "apply database migrations")
    command(commands, "rotate-key", "re-encrypt endpoint secrets with HOOKRELAY_SECRET_KEY")
    bench = command(commands, "bench", "run a benchmark and print its figures")
    benches = bench.add_subparsers(dest="bench", required=True, metavar="BENCHMARK")
    run = command(benches, "run", "latency at fixed rates, max rate, fan-out, memory")
    run.add_argument("--quick", action="store_true", help="10 s per rate instead of 60 s")
    run.add_argument(
        "--workers",
        type=int,
        default=max(1, (os.cpu_count() or 2) // 2),
        help="worker processes (one per two CPUs)",
    )
    run.add_argument(
        "--api-processes",
        type=positive_int,
        default=1,
        help="API processes sharing the port (hookrelay api --processes)",
    )
    run.add_argument(
        "--partitions",
        type=non_negative_int,
        default=0,
        help="first make the log's partitions of this many more intervals (HOOKRELAY_PARTITION_"
        "INTERVAL, a day by default), as a log kept that long has",
    )
    run.add_argument(
        "--output",
        type=Path,
        default=Path("bench-results/latest.json"),
        help="where to write the figures as JSON",
    )
    run.add_argument("--plot", type=Path, help="write a latency plot (PNG) here")
    admin = command(benches, "admin", "dead letters among ten million deliveries; replay")
    admin.add_argument("--deliveries", type=int, default=10_000_000, help="deliveries to seed")
    # Two days of hourly partitions: as many as a month of the default daily ones.
    admin.add_argument(
        "--partitions", type=int, default=48, help="partitions the seeded deliveries span"
    )
    admin.add_argument(
        "--partition-interval",
        type=parse_whole_minutes,
        default="1h",
        help="the stack's HOOKRELAY_PARTITION_INTERVAL (whole minutes)",
    )
    admin.add_argument("--replay", type=int, default=100_000, help="dead deliveries to replay")
    admin.add_argument("--workers", type=int, default=2, help="worker processes")
    admin.add_argument("--samples", type=int, default=200, help="timed requests per listing")
    admin.add_argument(
        "--output",
        type=Path,
        default=Path("bench-results/admin.json"),
        help="where to write the figures as JSON",
    )
    soak = command(benches, "soak", "a fixed rate for many minutes: do the tables stay flat?")
    soak.add_argument("--rate", type=positive_number, default=500, help="events per second")
    soak.add_argument(
        "--batch",
        type=positive_int,
        default=1,
        help="events per request (above 1, sent to batch ingest at the same rate of events)",
    )
    soak.add_argument("--minutes", type=positive_number, default=20, help="how long to ingest")
    soak.add_argument(
        "--retention",
        type=positive_duration,
        default="2m",
        help="HOOKRELAY_RETENTION of the workers",
    )
    soak.add_argument(
        "--partition-interval",
        type=parse_whole_minutes,
        default="1m",
        help="HOOKRELAY_PARTITION_INTERVAL of the workers",
    )
    soak.add_argument(
        "--every", type=positive_duration, default="30s", help="time between two reports"
    )
    soak.add_argument("--workers", type=int, default=1, help="worker processes")
    soak.add_argument(
        "--output",
        type=Path,
        default=Path("bench-results/soak.json"),
        help="where to write the figures as JSON",
    )
    receive = command(commands, "receive", "run a local receiver that verifies webhooks")
    receive.add_argument("--host", default="127.0.0.1", help="address to listen on")
    receive.add_argument("--port", type=int, default=9000, help="port to listen on")
    receive.add_argument(
        "--secret",
        help="the endpoint's whsec_ secret: deliveries that do not verify with it are answered "
        "401; without it, every delivery is accepted unverified",
    )
    receive.add_argument(
        "--status",
        type=http_status,
        default=200,
        help="the status answered to deliveries that verify (e.g. 500 to watch hookrelay retry)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    env = dict(os.environ)
    if args.command == "dev":
        env.setdefault("HOOKRELAY_LOG_FORMAT", "console")
    try:
        settings = Settings.from_env(env)
        configure_logging(settings.log_format, settings.log_level, settings.secret_values())
        return _run(args, settings, env)
    except (ConfigError, EmbeddedServerError) as exc:
        print(f"hookrelay: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, settings: Settings, env: dict[str, str]) -> int:
    if args.command == "dev":
        from hookrelay.dev.run import run_dev

        return run_dev(settings, args.data_dir, args.host, args.port)
    # The benchmark's processes start from this environment; set, this keeps their logs.
    keep_logs = bool(env.get("HOOKRELAY_BENCH_KEEP_LOGS"))
    if args.command == "bench" and args.bench == "run":
        from hookrelay.bench import throughput

        return throughput.main(
            args.quick,
            args.workers,
            args.api_processes,
            args.partitions,
            args.output,
            args.plot,
            env,
            keep_logs,
        )
    if args.command == "bench" and args.bench == "soak":
        from hookrelay.bench import soak

        return soak.main(
            args.rate,
            args.batch,
            args.minutes,
            args.every,
            args.retention,
            args.partition_interval,
            args.workers,
            args.output,
            env,
            keep_logs,
        )
    if args.command == "bench":
        from hookrelay.bench import admin

        return admin.main(
            args.deliveries,
            args.replay,
            args.workers,
            args.samples,
            args.partitions,
            args.partition_interval,
            args.output,
            env,
            keep_logs,
        )
    if args.command == "receive":
        from hookrelay.dev.receive import create_receiver, run_receiver

        try:
            receiver = create_receiver(args.secret, args.status)
        except ValueError as exc:
            raise ConfigError(f"--secret is not an endpoint's signing secret: {exc}") from exc
        run_receiver(receiver, args.host, args.port)
        return 0
    _install_uvloop()
    _collect_garbage_less_often()
    if args.command == "migrate":
        from hookrelay.storage.migrate import migrate

        applied = asyncio.run(
            migrate(
                settings.require_database_url(), partition_interval_s=settings.partition_interval_s
            )
        )
        print(
            f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else "")
        )
        return 0
    if args.command == "rotate-key":
        return asyncio.run(_rotate_key(settings))
    if args.command == "api":
        from hookrelay.api.server import run_api

        settings.require_database_url(), settings.require_redis_url(), settings.require_secret_key()
        if not args.reuse_port:  # a port taken is a clear error here, not a traceback later
            from hookrelay.dev.run import check_port_free

            check_port_free(args.host, args.port)
        if args.processes > 1:
            api_argv = ["api", "--host", args.host, "--port", str(args.port), "--reuse-port"]
            return _run_processes(api_argv, args.processes)
        run_api(settings, args.host, args.port, args.reuse_port)
        return 0
    if args.command == "worker" and args.processes > 1:
        return _run_processes(["worker"], args.processes)
    if args.command == "worker":
        from hookrelay.worker.process import run_worker

        settings.require_database_url(), settings.require_redis_url(), settings.require_secret_key()
        asyncio.run(run_worker(settings))
        return 0
    raise AssertionError(args.command)


async def _rotate_key(settings: Settings) -> int:
    from hookrelay.signing.rekey import reseal_all
    from hookrelay.storage import Storage

    storage = await Storage.open(settings.require_database_url())
    try:
        count = await reseal_all(storage.maintenance, settings.secret_box())
    finally:
        await storage.close()
    print(f"re-encrypted the secrets of {count} endpoint(s)")
    return 0


def _run_processes(command: list[str], count: int) -> int:
    """Run `hookrelay <command>` in `count` processes; pass SIGINT/SIGTERM on to them and wait
    for all."""
    import signal
    import subprocess

    argv = [sys.executable, "-m", "hookrelay", *command]
    children: list[subprocess.Popen[bytes]] = []
    stopping: list[int] = []  # the signal that asked to stop, once one did

    def forward(signum: int, _frame: object) -> None:
        stopping[:] = [signal.SIGTERM if signum == signal.SIGHUP else signum]
        for child in children:
            if child.poll() is None:
                child.send_signal(stopping[0])

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    # Each in a process group of its own: Ctrl-C at a terminal reaches the children once, from
    # here (a second SIGINT would cut their graceful stop short). A child whose parent dies
    # without passing a signal on (SIGKILL) gets SIGTERM, and does not keep the port. A signal
    # that comes while they start stops those started, and no more start.
    for _ in range(count):
        if stopping:
            break
        children.append(subprocess.Popen(argv, process_group=0, preexec_fn=_terminate_with_parent))
        if stopping:
            children[-1].send_signal(stopping[0])
    codes = [child.wait() for child in children]
    return 0 if all(code == 0 for code in codes) else 1


def _terminate_with_parent() -> None:
    """In a child about to start: SIGTERM when its parent dies (Linux's PR_SET_PDEATHSIG)."""
    import ctypes
    import signal

    with suppress(OSError, AttributeError):  # not Linux: the parent's signals must do
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


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
