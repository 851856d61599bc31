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
from tests.acceptance.cluster import ADMIN_TOKEN, Cluster
from tests.conftest import server_tempdir

pytestmark = pytest.mark.acceptance

schema = schemathesis.openapi.from_dict(openapi_document())
EXAMPLES_PER_OPERATION = 30


@pytest.fixture(scope="module")
def live_api() -> Iterator[str]:
    root = server_tempdir()
    cluster = Cluster(root, log_level="warning")
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
