"""Hostile input against the live API (a real `hookrelay api` process on real Postgres and
Redis): requests generated from /openapi.json never get a 5xx, and every answer matches the
spec. Bounded: a few examples per operation."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from hookrelay.api.openapi import openapi_document
from tests.acceptance.harness import ADMIN_TOKEN, AcceptanceCluster
from tests.conftest import server_tempdir

pytestmark = pytest.mark.acceptance

# The event stream never ends by design, so it is tested on its own (test_live_streams).
schema = schemathesis.openapi.from_dict(openapi_document()).exclude(path_regex=r"/events/stream$")
EXAMPLES_PER_OPERATION = 30
# A long-poll may wait up to 60 s for nothing; generated ones wait at most this long.
MAX_FUZZ_WAIT_S = 0.2


@pytest.fixture(scope="module")
def live_api() -> Iterator[str]:
    root = server_tempdir()
    cluster = AcceptanceCluster(root, log_level="warning")
    try:
        asyncio.run(cluster.start())
        asyncio.run(cluster.start_api())
        yield cluster.url
    finally:
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_generated_requests_get_no_5xx_and_match_the_spec(
    case: schemathesis.Case, live_api: str
) -> None:
    wait = (case.query or {}).get("wait")
    if isinstance(wait, int | float) and wait > MAX_FUZZ_WAIT_S:
        case.query["wait"] = MAX_FUZZ_WAIT_S
    case.call_and_validate(
        base_url=live_api,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
