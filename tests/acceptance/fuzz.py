"""`make fuzz`: schemathesis's own runner against a live API (a real `hookrelay api` process on
its own Postgres and Redis), with far more cases than the test suite's bounded run.

    python -m tests.acceptance.fuzz [--cases 10000] [--seed N]

First, through the API, it makes for each caller an app, a spare key, an endpoint (its URL a
loopback port that refuses), an event of a job and a dead delivery (a worker runs only while
they are made); fuzz.toml puts their ids in most generated paths and queries, so the success
answers of every operation are checked, not only its 404. Then it runs schemathesis with the
admin token and with the app's key: everything but the deletes, then the deletes of an endpoint
and of a key, then the delete of the app.

Every check schemathesis has runs, but the ones that cannot hold for hookrelay by design (see
EXCLUDED_CHECKS). The run fails on any 5xx, any answer that does not match /openapi.json, and any
operation that never answered a valid request with a 2xx (its success answer went unchecked).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from hookrelay.api.openapi import openapi_document
from tests.acceptance.harness import ADMIN_TOKEN, AcceptanceCluster
from tests.conftest import REPO_ROOT, server_tempdir

DEFAULT_CASES = 10_000
# The event stream never ends, so its GET is left to test_live_streams; its other methods
# (HEAD, POST, ...) are still sent by the unsupported_method check.
STREAM_GET = "get_v1_apps_app_id_events_stream"
# schemathesis does not test the operation that serves the schema it loaded.
SCHEMA_GET = "openapi"
EXCLUDED_CHECKS = [
    # Needs two callers and the objects only one of them may reach: the run has one caller at a
    # time (the tests of app keys check that one app's key cannot reach another app).
    "object_level_authorization",
    # Which fields make a "positive" case acceptable depends on data a generated request does not
    # name (a seeded id is in most requests, not all): a valid-looking request may rightly get 404.
    "positive_data_acceptance",
]
# Only the admin may create an app: the app key's runs leave it out (it is refused with 403).
ADMIN_ONLY = ("post_v1_apps",)
# Deletes run after everything else, each caller's app last of all, so that what the seed made
# lives through the rest (schemathesis also feeds ids it saw in answers to later requests).
DELETE_APP = "delete_v1_apps_app_id"
DELETE_CHILDREN = (
    "delete_v1_apps_app_id_endpoints_endpoint_id",
    "delete_v1_apps_app_id_keys_key_id",
    "delete_v1_apps_app_id_portal-sessions",
)
# Seconds a generated long-poll may wait at most (see tests/acceptance/fuzz_hooks.py).
REQUEST_TIMEOUT_S = 10
# The seeding worker retries once after this, then the delivery is dead.
SEED_RETRY_SCHEDULE = "50ms"
DEAD_WITHIN_S = 30.0
SEED_JOB_ID = "fuzz-job-1"

CONFIG = Path(__file__).with_name("fuzz.toml")


@dataclass(frozen=True)
class Seed:
    """Ids of resources a run made; each field names a dictionary of fuzz.toml."""

    app_id: str
    endpoint_id: str
    event_id: str
    delivery_id: str
    job_id: str
    # The key the DELETE of a key gets: not the one the app key's run calls with.
    doomed_key_id: str


@dataclass(frozen=True)
class Run:
    """One schemathesis run: one caller, its seed, and the operations it covers."""

    name: str
    token: str
    seed: Seed
    # Either the operations of this run, or (if empty) all but these.
    included: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()


def operations_with_inputs() -> int:
    """Operations with parameters or a body, but the stream's GET. The others (GET /healthz,
    ...) have a handful of distinct requests at most, so the cases go to these."""
    return sum(
        1
        for methods in openapi_document()["paths"].values()
        for operation in methods.values()
        if operation["operationId"] != STREAM_GET
        and (operation.get("parameters") or "requestBody" in operation)
    )


def labels_of(run: Run) -> set[str]:
    """The operations a run covers, as schemathesis names them (it leaves out the one that
    serves the schema it loaded)."""
    return {
        f"{method.upper()} {path}"
        for path, methods in openapi_document()["paths"].items()
        for method, operation in methods.items()
        if operation["operationId"] not in (*run.excluded, SCHEMA_GET)
        and (not run.included or operation["operationId"] in run.included)
    }


def never_accepted(report: dict[str, Any], labels: set[str]) -> list[str]:
    """The operations that answered no valid request with a 2xx, in any phase: their success
    answers were never checked (schemathesis's report counts them in `valid_rates`)."""
    rates = report["valid_rates"]
    return sorted(
        label
        for label in labels
        if not any(phase["accepted"] for phase in rates.get(label, {}).values())
    )


def config_text(seed: Seed) -> str:
    """fuzz.toml with the dictionaries it binds filled with this seed's ids."""
    lines = [CONFIG.read_text(), "# Made by tests/acceptance/fuzz.py for this run."]
    for name, value in asdict(seed).items():
        lines += [f"[dictionaries.{name}]", f"values = [{json.dumps(value)}]", ""]
    return "\n".join(lines)


def schemathesis_command(
    url: str, config: Path, report: Path, run: Run, cases: int, seed: int | None
) -> list[str]:
    per_operation = max(1, math.ceil(cases / operations_with_inputs()))
    command = [
        os.path.join(os.path.dirname(sys.executable), "schemathesis"),
        "--config-file",
        str(config),
        "run",
        f"{url}/openapi.json",
        "--url",
        url,
        "--header",
        f"Authorization: Bearer {run.token}",
        "--checks",
        "all",
        "--exclude-checks",
        ",".join(EXCLUDED_CHECKS),
        "--max-examples",
        str(per_operation),
        "--request-timeout",
        str(REQUEST_TIMEOUT_S),
        "--suppress-health-check",
        "all",
        # One worker: with two, Python 3.11's ast.parse (which hypothesis calls to describe its
        # filters) can fail with "AST constructor recursion depth mismatch" (CPython gh-106905).
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    for operation_id in run.included:
        command += ["--include-operation-id", operation_id]
    for operation_id in run.excluded:
        command += ["--exclude-operation-id", operation_id]
    if seed is not None:
        command += ["--seed", str(seed)]
    return command


@contextmanager
def refusing_port() -> Iterator[int]:
    """A loopback port bound but not listening: every connection to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


class _Api:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url = session, url

    async def call(self, method: str, path: str, token: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"}
        async with self.session.request(
            method, self.url + path, json=body, headers=headers
        ) as response:
            answer = await response.json()
            if response.status >= 300:
                raise AssertionError(f"{method} {path}: {response.status} {answer}")
            return answer


async def make_seed(api: _Api, callback_url: str, name: str) -> tuple[Seed, str]:
    """Make a run's resources; return their ids and the app's key."""
    app = await api.call("POST", "/v1/apps", ADMIN_TOKEN, {"name": f"fuzz {name}"})
    base = f"/v1/apps/{app['id']}"
    doomed_key = await api.call("POST", f"{base}/keys", ADMIN_TOKEN, {"name": "doomed"})
    endpoint = await api.call("POST", f"{base}/endpoints", ADMIN_TOKEN, {"url": callback_url})
    event = await api.call(
        "POST",
        f"{base}/events",
        ADMIN_TOKEN,
        {"type": "fuzz.seeded", "data": {}, "job_id": SEED_JOB_ID},
    )
    deliveries = await api.call(
        "GET",
        f"{base}/deliveries?event_id={event['id']}&endpoint_id={endpoint['id']}",
        ADMIN_TOKEN,
    )
    seed = Seed(
        app_id=app["id"],
        endpoint_id=endpoint["id"],
        event_id=event["id"],
        delivery_id=deliveries["data"][0]["id"],
        job_id=SEED_JOB_ID,
        doomed_key_id=doomed_key["id"],
    )
    return seed, str(app["api_key"])


async def wait_dead(api: _Api, seeds: list[Seed]) -> None:
    """Wait until the worker has given up on every seeded delivery."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEAD_WITHIN_S
    for seed in seeds:
        path = f"/v1/apps/{seed.app_id}/deliveries/{seed.delivery_id}"
        while (await api.call("GET", path, ADMIN_TOKEN))["status"] != "dead":
            if loop.time() > deadline:
                raise AssertionError(f"delivery {seed.delivery_id} is not dead")
            await asyncio.sleep(0.1)


async def seed_runs(cluster: AcceptanceCluster, refused_port: int) -> list[Run]:
    """The admin's run and the app key's, each with resources of its own. A worker runs only
    while they are made, so that the deliveries die on the refused loopback port; it is gone
    before the fuzzing starts, so nothing the fuzzing registers is ever called."""
    callback_url = f"http://127.0.0.1:{refused_port}/hook"
    worker = cluster.start_worker()
    try:
        async with aiohttp.ClientSession() as session:
            api = _Api(session, cluster.url)
            admin_seed, _ = await make_seed(api, callback_url, "admin")
            app_seed, app_key = await make_seed(api, callback_url, "app key")
            await wait_dead(api, [admin_seed, app_seed])
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    runs = []
    for caller, token, seed, refused in [
        ("admin token", ADMIN_TOKEN, admin_seed, ()),
        ("app key", app_key, app_seed, ADMIN_ONLY),
    ]:
        runs += [
            Run(caller, token, seed, excluded=(STREAM_GET, DELETE_APP, *DELETE_CHILDREN, *refused)),
            Run(f"{caller}, deletes", token, seed, included=DELETE_CHILDREN),
            Run(f"{caller}, its app's delete", token, seed, included=(DELETE_APP,)),
        ]
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cases",
        type=int,
        default=int(os.environ.get("FUZZ_CASES", DEFAULT_CASES)),
        help="test cases of each run (spread evenly over the operations); default %(default)s",
    )
    parser.add_argument("--seed", type=int, default=None, help="repeat an earlier run")
    args = parser.parse_args()
    root = server_tempdir()
    cluster = AcceptanceCluster(root, log_level="warning", retry_schedule=SEED_RETRY_SCHEDULE)
    try:
        with refusing_port() as port:
            asyncio.run(cluster.start())
            asyncio.run(cluster.start_api())
            runs = asyncio.run(seed_runs(cluster, port))
            # Run from the cluster's folder: schemathesis leaves its cache in the working directory.
            env = {
                **os.environ,
                "SCHEMATHESIS_HOOKS": "tests.acceptance.fuzz_hooks",
                "PYTHONPATH": str(REPO_ROOT),
            }
            failed = []
            for number, run in enumerate(runs):
                config, report = root / f"fuzz-{number}.toml", root / f"fuzz-{number}.json"
                config.write_text(config_text(run.seed))
                print(f"fuzzing {cluster.url} with the {run.name}, {args.cases} cases", flush=True)
                command = schemathesis_command(
                    cluster.url, config, report, run, args.cases, args.seed
                )
                code = subprocess.run(command, env=env, cwd=root, check=False).returncode
                labels = labels_of(run)
                unexercised = never_accepted(json.loads(report.read_text()), labels)
                print(
                    f"{run.name}: {len(labels) - len(unexercised)} of {len(labels)} operations"
                    " answered a valid request with a 2xx",
                    flush=True,
                )
                if unexercised:
                    print("never a 2xx: " + ", ".join(unexercised), flush=True)
                if code != 0 or unexercised:
                    failed.append(run.name)
            if failed:
                print(f"fuzzing failed: {'; '.join(failed)}", flush=True)
            return 1 if failed else 0
    finally:
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
