"""The JSON Schemas in schemas/events/, checked directly with jsonschema (the reference) and with
jsonschema-rs (what the API validates with): every case holds for both, with the same errors."""

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from jsonschema import Draft202012Validator

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "events"
SCHEMA_FILES = sorted(SCHEMA_DIR.glob("*.json"))

BUILT_IN_TYPES = (
    "job.queued",
    "job.started",
    "job.progress",
    "job.completed",
    "job.failed",
    "job.cancelled",
    "job.action_required",
)

# The smallest valid `data` of each type: invalid cases change exactly one thing in it.
MINIMAL: dict[str, dict[str, Any]] = {
    "job.queued": {"job_id": "job_1"},
    "job.started": {"job_id": "job_1"},
    "job.progress": {"job_id": "job_1", "percent": 40},
    "job.completed": {"job_id": "job_1", "output": {"text": "hello"}},
    "job.failed": {"job_id": "job_1", "error": {"code": "oom", "message": "Out of memory"}},
    "job.cancelled": {"job_id": "job_1"},
    "job.action_required": {
        "job_id": "job_1",
        "action": {"kind": "approval", "message": "Approve the spend?"},
    },
}

ARTIFACT = {"url": "https://cdn.example.com/a.png", "content_type": "image/png", "size": 1024}

FULL_EXAMPLES = [
    pytest.param(
        "job.queued",
        {
            "job_id": "gen:2024-06-01.abc_1",
            "model": "flux-dev",
            "metadata": {"user": "u_1"},
            "queue_position": 0,
            "queued_at": "2024-06-01T12:00:00Z",
        },
        id="queued",
    ),
    pytest.param(
        "job.started",
        {"job_id": "job_1", "model": "flux-dev", "started_at": "2024-06-01T12:00:05Z"},
        id="started",
    ),
    pytest.param(
        "job.progress",
        {"job_id": "job_1", "percent": 42.5, "message": "step 21/50", "output": "Once upon"},
        id="progress",
    ),
    pytest.param(
        "job.completed",
        {
            "job_id": "job_1",
            "artifacts": [ARTIFACT, {**ARTIFACT, "name": "b.png", "sha256": "ab12"}],
            "started_at": "2024-06-01T12:00:05Z",
            "finished_at": "2024-06-01T12:00:35Z",
        },
        id="completed-artifacts",
    ),
    pytest.param(
        "job.completed",
        {"job_id": "job_1", "output": {"text": "hi"}, "artifacts": [ARTIFACT]},
        id="completed-output-and-artifacts",
    ),
    pytest.param(
        "job.failed",
        {
            "job_id": "job_1",
            "error": {"code": "oom", "message": "Out of memory", "retryable": True},
            "finished_at": "2024-06-01T12:00:35Z",
        },
        id="failed",
    ),
    pytest.param(
        "job.cancelled",
        {"job_id": "job_1", "reason": "cancelled by user", "finished_at": "2024-06-01T12:01:00Z"},
        id="cancelled",
    ),
    pytest.param(
        "job.action_required",
        {
            "job_id": "job_1",
            "action": {
                "kind": "input",
                "message": "Pick a style",
                "url": "https://app.example.com/jobs/job_1/review",
                "expires_at": "2024-06-02T12:00:00Z",
                "fields": [{"name": "style", "label": "Style", "type": "text"}],
                "options": ["approve", "reject"],
            },
        },
        id="action_required",
    ),
]


@cache
def validator(event_type: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{event_type}.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@cache
def rs_validator(event_type: str) -> jsonschema_rs.Validator:
    schema = json.loads((SCHEMA_DIR / f"{event_type}.json").read_text(encoding="utf-8"))
    return jsonschema_rs.Draft202012Validator(schema, validate_formats=False, offline=True)


def json_path(parts: list[str | int]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def failures(event_type: str, data: Any) -> list[tuple[str, str]]:
    """(JSON path, failing keyword) of every error, sorted; jsonschema-rs must find the same."""
    found = sorted((e.json_path, str(e.validator)) for e in validator(event_type).iter_errors(data))
    rs_found = sorted(
        (json_path(e.instance_path), str(e.schema_path[-1]))
        for e in rs_validator(event_type).iter_errors(data)
    )
    assert rs_found == found
    assert rs_validator(event_type).is_valid(data) == (not found)
    return found


def minimal(event_type: str, **changes: Any) -> dict[str, Any]:
    return {**MINIMAL[event_type], **changes}


def without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


# The files themselves


def test_schema_directory_holds_one_file_per_built_in_type() -> None:
    assert sorted(path.stem for path in SCHEMA_FILES) == sorted(BUILT_IN_TYPES)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda path: path.stem)
def test_schema_is_valid_draft_2020_12(path: Path) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda path: path.stem)
def test_schema_id_and_title_name_the_type(path: Path) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert schema["$id"] == f"https://hookrelay.dev/schemas/events/{path.stem}.json"
    assert path.stem in schema["title"]
    assert schema["description"]


# Valid data


@pytest.mark.parametrize("event_type", BUILT_IN_TYPES)
def test_accepts_minimal_data(event_type: str) -> None:
    assert failures(event_type, MINIMAL[event_type]) == []


@pytest.mark.parametrize(("event_type", "data"), FULL_EXAMPLES)
def test_accepts_full_example(event_type: str, data: dict[str, Any]) -> None:
    assert failures(event_type, data) == []


@pytest.mark.parametrize("event_type", BUILT_IN_TYPES)
def test_accepts_fields_a_provider_adds(event_type: str) -> None:
    data = minimal(event_type, provider_trace={"region": "us-east-1"})
    assert failures(event_type, data) == []


# job_id, on every job.* type


@pytest.mark.parametrize("event_type", BUILT_IN_TYPES)
def test_rejects_missing_job_id(event_type: str) -> None:
    assert failures(event_type, without(MINIMAL[event_type], "job_id")) == [("$", "required")]


@pytest.mark.parametrize("event_type", BUILT_IN_TYPES)
@pytest.mark.parametrize("job_id", [42, None, ["job_1"]], ids=["int", "null", "list"])
def test_rejects_non_string_job_id(event_type: str, job_id: Any) -> None:
    assert failures(event_type, minimal(event_type, job_id=job_id)) == [("$.job_id", "type")]


@pytest.mark.parametrize("event_type", BUILT_IN_TYPES)
def test_rejects_empty_job_id(event_type: str) -> None:
    errors = failures(event_type, minimal(event_type, job_id=""))
    assert ("$.job_id", "minLength") in errors


@pytest.mark.parametrize("event_type", BUILT_IN_TYPES)
def test_accepts_job_id_of_200_characters(event_type: str) -> None:
    assert failures(event_type, minimal(event_type, job_id="j" * 200)) == []


@pytest.mark.parametrize("event_type", BUILT_IN_TYPES)
def test_rejects_job_id_over_200_characters(event_type: str) -> None:
    errors = failures(event_type, minimal(event_type, job_id="j" * 201))
    assert errors == [("$.job_id", "maxLength")]


@pytest.mark.parametrize(
    "job_id",
    ["job 1", "job/1", "jöb", "job_1\n"],
    ids=["space", "slash", "non-ascii", "trailing-newline"],
)
def test_rejects_job_id_with_characters_outside_the_pattern(job_id: str) -> None:
    errors = failures("job.started", minimal("job.started", job_id=job_id))
    assert errors == [("$.job_id", "pattern")]


# Common optional fields


@pytest.mark.parametrize("event_type", BUILT_IN_TYPES)
def test_rejects_non_object_metadata(event_type: str) -> None:
    errors = failures(event_type, minimal(event_type, metadata=["a"]))
    assert errors == [("$.metadata", "type")]


@pytest.mark.parametrize("event_type", BUILT_IN_TYPES)
def test_rejects_non_string_model(event_type: str) -> None:
    assert failures(event_type, minimal(event_type, model=7)) == [("$.model", "type")]


# job.queued


def test_queued_rejects_negative_queue_position() -> None:
    errors = failures("job.queued", minimal("job.queued", queue_position=-1))
    assert errors == [("$.queue_position", "minimum")]


def test_queued_rejects_fractional_queue_position() -> None:
    errors = failures("job.queued", minimal("job.queued", queue_position=1.5))
    assert errors == [("$.queue_position", "type")]


# job.progress


@pytest.mark.parametrize("percent", [0, 100, 0.5, 99.99])
def test_progress_accepts_percent_from_0_to_100(percent: float) -> None:
    assert failures("job.progress", minimal("job.progress", percent=percent)) == []


def test_progress_rejects_percent_above_100() -> None:
    errors = failures("job.progress", minimal("job.progress", percent=150))
    assert errors == [("$.percent", "maximum")]


def test_progress_rejects_negative_percent() -> None:
    errors = failures("job.progress", minimal("job.progress", percent=-1))
    assert errors == [("$.percent", "minimum")]


def test_progress_rejects_percent_as_string() -> None:
    errors = failures("job.progress", minimal("job.progress", percent="40"))
    assert errors == [("$.percent", "type")]


def test_progress_requires_percent() -> None:
    data = without(minimal("job.progress", message="working"), "percent")
    assert failures("job.progress", data) == [("$", "required")]


def test_progress_rejects_non_string_message() -> None:
    errors = failures("job.progress", minimal("job.progress", message=["working"]))
    assert errors == [("$.message", "type")]


# job.completed


@pytest.mark.parametrize("output", [None, "text", 3, [], {}], ids=repr)
def test_completed_accepts_any_json_output(output: Any) -> None:
    assert failures("job.completed", {"job_id": "job_1", "output": output}) == []


def test_completed_rejects_neither_output_nor_artifacts() -> None:
    assert failures("job.completed", {"job_id": "job_1"}) == [("$", "anyOf")]


def test_completed_rejects_empty_artifacts_without_output() -> None:
    assert failures("job.completed", {"job_id": "job_1", "artifacts": []}) == [("$", "anyOf")]


@pytest.mark.parametrize("key", ["url", "content_type", "size"])
def test_completed_rejects_artifact_missing_required_key(key: str) -> None:
    data = {"job_id": "job_1", "artifacts": [without(ARTIFACT, key)]}
    assert failures("job.completed", data) == [("$.artifacts[0]", "required")]


def test_completed_rejects_artifact_with_negative_size() -> None:
    data = {"job_id": "job_1", "artifacts": [{**ARTIFACT, "size": -1}]}
    assert failures("job.completed", data) == [("$.artifacts[0].size", "minimum")]


def test_completed_rejects_artifact_with_fractional_size() -> None:
    data = {"job_id": "job_1", "artifacts": [{**ARTIFACT, "size": 10.5}]}
    assert failures("job.completed", data) == [("$.artifacts[0].size", "type")]


def test_completed_rejects_artifacts_that_are_not_a_list() -> None:
    data = {"job_id": "job_1", "artifacts": ARTIFACT}
    assert ("$.artifacts", "type") in failures("job.completed", data)


# job.failed


def test_failed_requires_error() -> None:
    assert failures("job.failed", {"job_id": "job_1"}) == [("$", "required")]


@pytest.mark.parametrize("key", ["code", "message"])
def test_failed_rejects_error_missing_required_key(key: str) -> None:
    data = {"job_id": "job_1", "error": without(MINIMAL["job.failed"]["error"], key)}
    assert failures("job.failed", data) == [("$.error", "required")]


def test_failed_rejects_non_string_error_code() -> None:
    data = {"job_id": "job_1", "error": {"code": 500, "message": "Internal error"}}
    assert failures("job.failed", data) == [("$.error.code", "type")]


def test_failed_rejects_error_as_string() -> None:
    data = {"job_id": "job_1", "error": "Out of memory"}
    assert failures("job.failed", data) == [("$.error", "type")]


# job.cancelled


def test_cancelled_rejects_non_string_reason() -> None:
    errors = failures("job.cancelled", minimal("job.cancelled", reason={"by": "user"}))
    assert errors == [("$.reason", "type")]


# job.action_required


def test_action_required_requires_action() -> None:
    assert failures("job.action_required", {"job_id": "job_1"}) == [("$", "required")]


@pytest.mark.parametrize("key", ["kind", "message"])
def test_action_required_rejects_action_missing_required_key(key: str) -> None:
    action = without(MINIMAL["job.action_required"]["action"], key)
    data = {"job_id": "job_1", "action": action}
    assert failures("job.action_required", data) == [("$.action", "required")]


@pytest.mark.parametrize("typo", ["expire_at", "link"])
def test_action_required_rejects_unknown_action_key(typo: str) -> None:
    action = {**MINIMAL["job.action_required"]["action"], typo: "x"}
    data = {"job_id": "job_1", "action": action}
    assert failures("job.action_required", data) == [("$.action", "additionalProperties")]


def test_action_required_rejects_field_without_name() -> None:
    action = {**MINIMAL["job.action_required"]["action"], "fields": [{"label": "Style"}]}
    data = {"job_id": "job_1", "action": action}
    assert failures("job.action_required", data) == [("$.action.fields[0]", "required")]


def test_action_required_rejects_empty_options() -> None:
    action = {**MINIMAL["job.action_required"]["action"], "options": []}
    data = {"job_id": "job_1", "action": action}
    assert failures("job.action_required", data) == [("$.action.options", "minItems")]
