"""hookrelay.schemas: event type names, event data, and request bodies against schemas/requests/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hookrelay.api.errors import answer_of
from hookrelay.errors import InvalidPayload
from hookrelay.schemas import validate_event_data, validate_request

REQUEST_SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "requests"
REQUEST_NAMES = sorted(path.stem for path in REQUEST_SCHEMA_DIR.glob("*.json"))
EVENT_SCHEMA_DIR = REQUEST_SCHEMA_DIR.parent / "events"

# The smallest valid body of each request.
VALID_REQUESTS: dict[str, dict[str, Any]] = {
    "app_create": {"name": "Image generator"},
    "app_update": {"name": "Image generator v2"},
    "endpoint_create": {"url": "https://example.com/hooks"},
    "endpoint_update": {"status": "paused"},
    "event_create": {"type": "job.completed", "data": {"job_id": "job_1"}},
    "app_key_create": {},
    "event_batch": {"events": [{"type": "image.ready", "data": {}}]},
    "recover": {"since": "2026-01-01T00:00:00Z"},
    "replay": {},
    "stream_token_create": {},
    "portal_session_create": {},
    "example_send": {"type": "job.completed"},
}

# Fuller valid bodies, using every optional field.
FULL_REQUESTS: dict[str, dict[str, Any]] = {
    "app_create": {"name": "Image generator", "uid": "image-gen.v1_prod"},
    "app_update": {"name": "Image generator", "uid": None},
    "endpoint_create": {
        "url": "https://example.com/hooks",
        "event_types": ["job.completed", "image.ready"],
        "description": "Production receiver",
        "signing": "ed25519",
        "headers": {"X-Tenant": "acme", "Authorization": "Bearer abc"},
        "rate_limit_per_s": 50,
    },
    "endpoint_update": {
        "url": "https://example.com/hooks2",
        "event_types": None,
        "description": "",
        "status": "active",
        "headers": {},
        "rate_limit_per_s": None,
    },
    "event_create": {"type": "image.ready", "data": {}, "job_id": "gen:2024-06-01.abc_1"},
    "app_key_create": {"name": "ci", "scopes": ["manage", "read"]},
    "portal_session_create": {"capabilities": ["replay", "view_secrets"], "expires_in": 86400},
    "example_send": {"type": "job.action_required"},
    "event_batch": {"events": [{"type": "image.ready", "data": {}}] * 3},
    "recover": {"since": "2d", "until": "2026-01-02T00:00:00Z", "dry_run": True},
    "stream_token_create": {"job_id": "job_1", "expires_in": 600},
    "replay": {
        "status": "dead",
        "endpoint_id": "ep_" + "0" * 32,
        "event_type": "job.completed",
        "since": "2026-01-01T00:00:00Z",
        "until": "30m",
        "dry_run": False,
        "include_replayed": True,
    },
}


def error_of(call: Any, *args: Any) -> InvalidPayload:
    with pytest.raises(InvalidPayload) as caught:
        call(*args)
    return caught.value


def paths_of(error: InvalidPayload) -> list[str]:
    return [detail["path"] for detail in error.details]


# Event types and data


@pytest.mark.parametrize(
    "event_type",
    [
        "",
        "job",
        "job.",
        ".job",
        "job..completed",
        "Job.completed",
        "job.Completed",
        "job-completed.x",
        "job completed.x",
        "job.completed\n",
        "job.completed ",
        "jöb.completed",
    ],
)
def test_invalid_event_type_is_refused_with_path_type(event_type: str) -> None:
    error = error_of(validate_event_data, event_type, {"job_id": "job_1"})
    assert answer_of(error) == (422, "invalid_payload")
    assert paths_of(error) == ["$.type"]


@pytest.mark.parametrize(
    "data", [{}, {"url": "https://cdn.example.com/a.png"}, {"nested": {"list": [1, 2, 3]}}]
)
def test_custom_event_type_accepts_any_object(data: dict[str, Any]) -> None:
    validate_event_data("image.ready", data)


@pytest.mark.parametrize("event_type", ["image.ready", "a.b", "org_1.job_2.step_3", "x.y.z"])
def test_custom_dotted_event_type_is_accepted(event_type: str) -> None:
    validate_event_data(event_type, {"anything": True})


def test_builtin_event_types_are_the_job_types() -> None:
    assert sorted(path.stem for path in EVENT_SCHEMA_DIR.glob("*.json")) == [
        "job.action_required",
        "job.cancelled",
        "job.completed",
        "job.failed",
        "job.progress",
        "job.queued",
        "job.started",
    ]


def test_valid_progress_data_passes() -> None:
    validate_event_data("job.progress", {"job_id": "job_1", "percent": 42.5})


def test_progress_percent_over_100_reports_its_path() -> None:
    error = error_of(validate_event_data, "job.progress", {"job_id": "job_1", "percent": 150})
    assert answer_of(error)[0] == 422
    assert paths_of(error) == ["$.data.percent"]


def test_missing_required_field_reports_the_data_root() -> None:
    error = error_of(validate_event_data, "job.progress", {"job_id": "job_1"})
    assert paths_of(error) == ["$.data"]


def test_nested_error_path_uses_brackets_for_list_indexes() -> None:
    data = {"job_id": "job_1", "artifacts": [{"url": "https://cdn.example.com/a.png"}, {}]}
    error = error_of(validate_event_data, "job.completed", data)
    assert "$.data.artifacts[1]" in paths_of(error)


def test_every_error_is_reported() -> None:
    error = error_of(validate_event_data, "job.progress", {"job_id": 7, "percent": -1})
    assert sorted(paths_of(error)) == ["$.data.job_id", "$.data.percent"]


# Request bodies


def test_every_request_schema_has_a_valid_example() -> None:
    assert sorted(VALID_REQUESTS) == REQUEST_NAMES
    assert sorted(FULL_REQUESTS) == REQUEST_NAMES


@pytest.mark.parametrize("name", REQUEST_NAMES)
def test_minimal_valid_request_passes_and_is_returned(name: str) -> None:
    body = VALID_REQUESTS[name]
    assert validate_request(name, body) is body


@pytest.mark.parametrize("name", REQUEST_NAMES)
def test_full_valid_request_passes(name: str) -> None:
    validate_request(name, FULL_REQUESTS[name])


@pytest.mark.parametrize("name", REQUEST_NAMES)
def test_request_with_unknown_field_is_refused(name: str) -> None:
    error = error_of(validate_request, name, {**VALID_REQUESTS[name], "surprise": 1})
    assert answer_of(error)[0] == 422
    assert paths_of(error) == ["$"]
    assert "surprise" in error.details[0]["message"]


@pytest.mark.parametrize("name", REQUEST_NAMES)
@pytest.mark.parametrize("body", [[], "text", 1, None])
def test_request_that_is_not_an_object_is_refused(name: str, body: Any) -> None:
    error_of(validate_request, name, body)


@pytest.mark.parametrize("name", ["app_update", "endpoint_update"])
def test_empty_update_is_refused(name: str) -> None:
    error_of(validate_request, name, {})


@pytest.mark.parametrize("name", ["app_create", "endpoint_create", "event_create"])
def test_create_without_required_fields_is_refused(name: str) -> None:
    error_of(validate_request, name, {})


@pytest.mark.parametrize("name", ["endpoint_create", "endpoint_update"])
@pytest.mark.parametrize(
    "value", ["a\r\nX-Injected: 1", "a\nb", "a\rb", "trailing\n", "nul\x00byte"]
)
def test_endpoint_header_value_with_cr_lf_or_nul_is_refused(name: str, value: str) -> None:
    body = {**VALID_REQUESTS[name], "headers": {"X-Tenant": value}}
    assert paths_of(error_of(validate_request, name, body)) == ["$.headers.X-Tenant"]


@pytest.mark.parametrize("name", ["endpoint_create", "endpoint_update"])
@pytest.mark.parametrize("header", ["X-Bad\r\nX-Injected", "X Tenant", "X-Tenant:", "", "X-Ok\n"])
def test_endpoint_header_with_bad_name_is_refused(name: str, header: str) -> None:
    body = {**VALID_REQUESTS[name], "headers": {header: "value"}}
    error_of(validate_request, name, body)


@pytest.mark.parametrize("name", ["app_create", "app_update"])
@pytest.mark.parametrize("uid", ["app_0190a1b2c3d4e5f60718293a4b5c6d7e", "app_x"])
def test_uid_starting_with_app_prefix_is_refused(name: str, uid: str) -> None:
    body = {**VALID_REQUESTS[name], "uid": uid}
    assert paths_of(error_of(validate_request, name, body)) == ["$.uid"]


@pytest.mark.parametrize("name", ["app_create", "app_update"])
@pytest.mark.parametrize("uid", ["", "has space", "slash/uid", "trailing\n", "x" * 65])
def test_uid_of_bad_form_is_refused(name: str, uid: str) -> None:
    body = {**VALID_REQUESTS[name], "uid": uid}
    assert set(paths_of(error_of(validate_request, name, body))) == {"$.uid"}


@pytest.mark.parametrize("name", ["app_create", "app_update"])
@pytest.mark.parametrize("uid", ["my-app", "application_1", "APP_1", "a.b_c-d"])
def test_uid_not_starting_with_app_prefix_is_accepted(name: str, uid: str) -> None:
    validate_request(name, {**VALID_REQUESTS[name], "uid": uid})


@pytest.mark.parametrize("name", ["endpoint_create", "endpoint_update"])
@pytest.mark.parametrize("event_type", ["Job.completed", "job", "job.completed\n", "job..x", ""])
def test_endpoint_event_types_with_a_bad_type_are_refused(name: str, event_type: str) -> None:
    body = {**VALID_REQUESTS[name], "event_types": ["job.completed", event_type]}
    assert paths_of(error_of(validate_request, name, body)) == ["$.event_types[1]"]


@pytest.mark.parametrize("name", ["endpoint_create", "endpoint_update"])
def test_endpoint_event_types_must_not_repeat(name: str) -> None:
    body = {**VALID_REQUESTS[name], "event_types": ["job.completed", "job.completed"]}
    assert paths_of(error_of(validate_request, name, body)) == ["$.event_types"]


@pytest.mark.parametrize("event_type", ["Job.completed", "job", "job.completed\n"])
def test_event_create_with_a_bad_type_is_refused(event_type: str) -> None:
    body = {"type": event_type, "data": {}}
    assert paths_of(error_of(validate_request, "event_create", body)) == ["$.type"]


@pytest.mark.parametrize(
    ("item", "path"),
    [
        ({"type": "Job.completed", "data": {}}, "$.events[1].type"),
        ({"type": "job.completed"}, "$.events[1]"),
        ({"type": "job.completed", "data": {}, "extra": 1}, "$.events[1]"),
    ],
)
def test_a_batch_item_is_checked_as_event_create(item: dict[str, Any], path: str) -> None:
    body = {"events": [{"type": "image.ready", "data": {}}, item]}
    assert paths_of(error_of(validate_request, "event_batch", body)) == [path]


@pytest.mark.parametrize("data", [[], "text", 1, None])
def test_event_create_data_must_be_an_object(data: Any) -> None:
    body = {"type": "job.completed", "data": data}
    assert paths_of(error_of(validate_request, "event_create", body)) == ["$.data"]


@pytest.mark.parametrize("signing", ["rsa", "HMAC", ""])
def test_endpoint_signing_must_be_hmac_or_ed25519(signing: str) -> None:
    body = {**VALID_REQUESTS["endpoint_create"], "signing": signing}
    assert paths_of(error_of(validate_request, "endpoint_create", body)) == ["$.signing"]


def test_unknown_request_schema_name_raises_key_error() -> None:
    with pytest.raises(KeyError):
        validate_request("no_such_request", {})


def test_nesting_depth_counts_objects_and_arrays() -> None:
    from hookrelay.api.http import nesting_depth

    assert nesting_depth(1) == 0
    assert nesting_depth({}) == 1
    assert nesting_depth({"a": [1, {"b": []}]}) == 4
    deep: object = []
    for _ in range(10_000):
        deep = [deep]
    assert nesting_depth(deep) == 10_001  # no recursion limit on the way
