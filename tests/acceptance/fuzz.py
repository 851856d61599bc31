"""`make fuzz`: schemathesis's own runner against a live API (a real `hookrelay api` process on
its own Postgres and Redis), with far more cases than the test suite's bounded run.

    python -m tests.acceptance.fuzz [--cases 10000] [--seed N]

Every check schemathesis has runs, but the ones that cannot hold for hookrelay by design (see
EXCLUDED_CHECKS). The run fails on any 5xx and any answer that does not match /openapi.json.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

from hookrelay.api.openapi import openapi_document
from tests.acceptance.cluster import ADMIN_TOKEN, Cluster
from tests.conftest import REPO_ROOT, server_tempdir

DEFAULT_CASES = 10_000
# The event stream never ends, so its GET is left to test_live_streams; its other methods
# (HEAD, POST, ...) are still sent by the unsupported_method check.
STREAM_GET = "get_v1_apps_app_id_events_stream"
EXCLUDED_CHECKS = [
    # The admin token may do everything: there is no object another caller cannot reach.
    "object_level_authorization",
    # Which fields make a "positive" case acceptable depends on data the run has not made (an
    # endpoint id that exists, a job with events): a valid-looking request may rightly get 404.
    "positive_data_acceptance",
]
# Seconds a generated long-poll may wait at most (see tests/acceptance/fuzz_hooks.py).
REQUEST_TIMEOUT_S = 10


CONFIG = Path(__file__).with_name("fuzz.toml")


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


def schemathesis_command(url: str, cases: int, seed: int | None) -> list[str]:
    per_operation = max(1, math.ceil(cases / operations_with_inputs()))
    command = [
        os.path.join(os.path.dirname(sys.executable), "schemathesis"),
        "--config-file",
        str(CONFIG),
        "run",
        f"{url}/openapi.json",
        "--url",
        url,
        "--header",
        f"Authorization: Bearer {ADMIN_TOKEN}",
        "--checks",
        "all",
        "--exclude-checks",
        ",".join(EXCLUDED_CHECKS),
        "--max-examples",
        str(per_operation),
        "--exclude-operation-id",
        STREAM_GET,
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
    ]
    if seed is not None:
        command += ["--seed", str(seed)]
    return command


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cases",
        type=int,
        default=int(os.environ.get("FUZZ_CASES", DEFAULT_CASES)),
        help="test cases in all (spread evenly over the operations); default %(default)s",
    )
    parser.add_argument("--seed", type=int, default=None, help="repeat an earlier run")
    args = parser.parse_args()
    root = server_tempdir()
    cluster = Cluster(root, log_level="warning")
    try:
        asyncio.run(cluster.start())
        asyncio.run(cluster.start_api())
        # Run from the cluster's folder: schemathesis leaves its cache in the working directory.
        env = {
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.acceptance.fuzz_hooks",
            "PYTHONPATH": str(REPO_ROOT),
        }
        print(f"fuzzing {cluster.url} with about {args.cases} cases", flush=True)
        command = schemathesis_command(cluster.url, args.cases, args.seed)
        return subprocess.run(command, env=env, cwd=root, check=False).returncode
    finally:
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
