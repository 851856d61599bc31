"""The named states are StrEnums declared once (hookrelay.statuses, and JobState in
hookrelay.jobs): the request schemas, /openapi.json and the domain use exactly their values."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from aiohttp.test_utils import make_mocked_request

from hookrelay import retry
from hookrelay.api.http import query_choice
from hookrelay.api.openapi import openapi_document
from hookrelay.errors import BadRequest
from hookrelay.jobs import STATE_OF, TERMINAL, Job, JobState
from hookrelay.models import Event
from hookrelay.schemas import loaded_schemas
from hookrelay.services.access import Capability, Scope
from hookrelay.services.auth import CredentialKind
from hookrelay.statuses import DeliveryStatus, EndpointStatus, ErrorKind, SigningScheme

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _enums(node: Any, path: str = "") -> list[tuple[str, list[Any]]]:
    """(where, values) of every `enum` in a JSON document."""
    if isinstance(node, dict):
        here = [(path, node["enum"])] if "enum" in node else []
        return here + [e for key, sub in node.items() for e in _enums(sub, f"{path}/{key}")]
    if isinstance(node, list):
        return [e for n, sub in enumerate(node) for e in _enums(sub, f"{path}/{n}")]
    return []


def test_the_signing_schemes_a_request_may_ask_for_are_the_enum() -> None:
    signing = loaded_schemas("requests")["endpoint_create"]["properties"]["signing"]
    assert signing["enum"] == list(SigningScheme)


def test_an_endpoint_update_may_set_only_the_statuses_an_owner_sets() -> None:
    status = loaded_schemas("requests")["endpoint_update"]["properties"]["status"]
    assert status["enum"] == [EndpointStatus.ACTIVE, EndpointStatus.PAUSED]


def test_a_bulk_replay_filters_on_the_finished_statuses() -> None:
    status = loaded_schemas("requests")["replay"]["properties"]["status"]
    assert status["enum"] == [DeliveryStatus.DEAD, DeliveryStatus.SUCCEEDED]


FULL = {
    frozenset(DeliveryStatus): DeliveryStatus,
    frozenset(EndpointStatus): EndpointStatus,
    frozenset(SigningScheme): SigningScheme,
    frozenset(ErrorKind): ErrorKind,
    frozenset(JobState): JobState,
    frozenset(Scope): Scope,
    frozenset(Capability): Capability,
    frozenset(CredentialKind): CredentialKind,
}


def test_every_enum_of_openapi_is_one_of_the_declared_ones_or_part_of_one() -> None:
    found = _enums(openapi_document())
    full: set[type[StrEnum]] = set()
    for where, values in found:
        owner = next((enum for members, enum in FULL.items() if set(values) <= members), None)
        assert owner is not None, (where, values)
        if set(values) == set(owner):
            assert values == list(owner), where  # whole, in the order declared
            full.add(owner)
    # Each declared enum is stated whole somewhere (a record's field, or a query parameter).
    assert full == set(FULL.values())


def _query(name: str, value: str) -> Any:
    return make_mocked_request("GET", "/?" + urlencode({name: value}))


@pytest.mark.parametrize("status", list(DeliveryStatus))
def test_a_status_filter_is_read_as_the_enum_member(status: DeliveryStatus) -> None:
    read = query_choice(_query("status", str(status)), "status", DeliveryStatus)
    assert read is status


def test_an_unknown_status_filter_is_a_400_listing_the_statuses() -> None:
    with pytest.raises(BadRequest) as caught:
        query_choice(_query("status", "lost"), "status", DeliveryStatus)
    assert caught.value.message == (
        "status must be one of pending, sending, retrying, succeeded, dead, held, cancelled"
    )


def test_an_absent_filter_is_none() -> None:
    assert query_choice(make_mocked_request("GET", "/"), "status", DeliveryStatus) is None


@pytest.mark.parametrize(
    ("attempts", "status_code", "expected"),
    [
        (1, 200, DeliveryStatus.SUCCEEDED),
        (1, 500, DeliveryStatus.RETRYING),
        (3, 500, DeliveryStatus.DEAD),
        (1, 410, DeliveryStatus.DEAD),
    ],
)
def test_the_retry_decision_is_a_delivery_status(
    attempts: int, status_code: int, expected: DeliveryStatus
) -> None:
    decision = retry.decide(
        attempts_made=attempts,
        status_code=status_code,
        retry_after_s=None,
        schedule_s=(1.0, 2.0),
        now=NOW,
        rng=random.Random(1),
    )
    assert type(decision.status) is DeliveryStatus
    assert decision.status is expected


def test_every_job_event_sets_a_job_state_and_the_terminal_ones_are_states() -> None:
    assert set(STATE_OF.values()) == set(JobState)
    assert {JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED} == TERMINAL


def test_a_folded_job_state_serialises_as_its_value() -> None:
    job = Job("j1")
    body = orjson.dumps({"type": "job.failed", "data": {"job_id": "j1"}}).decode()
    job.apply(Event("evt_1", "app_1", "job.failed", "j1", body, NOW))
    assert job.state is JobState.FAILED
    assert orjson.loads(orjson.dumps({"state": job.state})) == {"state": "failed"}
