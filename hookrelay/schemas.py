"""Validation against the JSON Schemas in `schemas/`: event payloads and request bodies.

The validator is jsonschema-rs (compiled Rust, draft 2020-12): on the bodies the API takes it is
faster than the plain-Python checks this module used to compile by hand, and every keyword is
covered (see the CHANGELOG for the figures, `python -m hookrelay.bench.validate` to measure)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson

from hookrelay.errors import InvalidPayload
from hookrelay.resources import resource_dir

MAX_ERRORS_REPORTED = 20
# The job id rule, declared once: it holds for the job_id of an event and of its data (of any
# type), of a stream token, and of every query and path. It also bounds what goes into the
# events_app_job_idx index. The JSON Schemas that name a job_id say the same (a test keeps them
# equal to this).
JOB_ID_SCHEMA: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 200,
    "pattern": "^[A-Za-z0-9_.:\\-]+$(?!\\n)",
}
JOB_ID_RULE = "1 to 200 characters from A-Z a-z 0-9 _ . : -"
# The event type rule, declared once: dotted lowercase words. It holds for an event's type, an
# endpoint's event_types, and every type filter of a query or a replay; the request schemas that
# name an event type say the same (a test keeps them equal to this). As in the job id, (?!\n)
# stops the $ of Python's re (in clients, the OpenAPI fuzzer) from taking a trailing newline.
EVENT_TYPE_PATTERN = "^[a-z0-9_]+(\\.[a-z0-9_]+)+$"
EVENT_TYPE_SCHEMA: dict[str, Any] = {
    "type": "string",
    "maxLength": 128,
    "pattern": EVENT_TYPE_PATTERN + "(?!\\n)",
}


@cache
def loaded_schemas(kind: str) -> dict[str, dict[str, Any]]:
    """The schemas of `schemas/<kind>/` (events, requests, responses), by file name without
    `.json`; read once."""
    folder: Path = resource_dir("schemas") / kind
    return {path.stem: orjson.loads(path.read_bytes()) for path in sorted(folder.glob("*.json"))}


def _compile(schema: dict[str, Any], registry: jsonschema_rs.Registry | None = None) -> Any:
    """A draft 2020-12 validator that never fetches a reference from the network; `format` is
    an annotation only, as it is in the draft (and as it was with jsonschema)."""
    return jsonschema_rs.Draft202012Validator(
        schema, registry=registry, validate_formats=False, offline=True
    )


@cache
def _validators(kind: str) -> dict[str, jsonschema_rs.Validator]:
    schemas = loaded_schemas(kind)
    # A schema may name a sibling file ("$ref": "event_create.json"): its $id resolves it.
    registry = jsonschema_rs.Registry([(schema["$id"], schema) for schema in schemas.values()])
    validators = {}
    for name, schema in schemas.items():
        jsonschema_rs.meta.validate(schema)
        validators[name] = _compile(schema, registry)
    return validators


def validate_request(name: str, body: Any) -> dict[str, Any]:
    """Check a request body against `schemas/requests/<name>.json`; return it."""
    _check(_validators("requests")[name], body, "the request body is invalid")
    assert isinstance(body, dict)
    return body


def inline_refs(schema: Any, siblings: dict[str, dict[str, Any]]) -> Any:
    """`schema` with each `{"$ref": "<name>.json"}` replaced by that sibling schema (inlined
    too), for a consumer without a registry. Other references stay."""
    if isinstance(schema, list):
        return [inline_refs(item, siblings) for item in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if set(schema) == {"$ref"} and isinstance(ref, str) and ref.removesuffix(".json") in siblings:
        return inline_refs(siblings[ref.removesuffix(".json")], siblings)
    return {key: inline_refs(value, siblings) for key, value in schema.items()}


def event_type_schema() -> dict[str, Any]:
    """The rule for an event type (a copy of EVENT_TYPE_SCHEMA)."""
    return dict(EVENT_TYPE_SCHEMA)


_is_event_type = _compile(EVENT_TYPE_SCHEMA).is_valid
_is_job_id = _compile(JOB_ID_SCHEMA).is_valid


def is_event_type(value: Any) -> bool:
    """Whether `value` is an event type (bounded, dotted lowercase words)."""
    return isinstance(value, str) and _is_event_type(value)


def is_job_id(value: Any) -> bool:
    """Whether `value` is a job id (JOB_ID_SCHEMA)."""
    return isinstance(value, str) and _is_job_id(value)


def check_data_job_id(data: dict[str, Any]) -> None:
    """Refuse a `job_id` in an event's data, of any type, that is not a job id."""
    if "job_id" in data and not is_job_id(data["job_id"]):
        raise InvalidPayload(
            f"data.job_id must be {JOB_ID_RULE}",
            [{"path": "$.data.job_id", "message": f"is not a job id ({JOB_ID_RULE})"}],
        )


def event_examples() -> dict[str, dict[str, Any]]:
    """The example data of each built-in event type (its schema's first `examples` entry)."""
    return {
        name: schema["examples"][0] for name, schema in sorted(loaded_schemas("events").items())
    }


def validate_event_data(event_type: str, data: Any) -> None:
    """Check `data` against its type's schema; a custom type has none and is accepted."""
    if not is_event_type(event_type):
        raise InvalidPayload(
            "an event type is dotted lowercase words, like job.completed",
            [{"path": "$.type", "message": f"does not match {EVENT_TYPE_PATTERN}"}],
        )
    validator = _validators("events").get(event_type)
    if validator is not None:
        _check(validator, data, f"the data of a {event_type} event is invalid", "$.data")


def _check(
    validator: jsonschema_rs.Validator, document: Any, message: str, root: str = "$"
) -> None:
    """Raise InvalidPayload naming every failing path (by path) if `document` is invalid."""
    if validator.is_valid(document):  # the usual case, and faster than collecting no errors
        return
    errors = sorted(validator.iter_errors(document), key=lambda e: e.instance_path)
    raise InvalidPayload(message, [_describe(e, root) for e in errors[:MAX_ERRORS_REPORTED]])


def _describe(error: jsonschema_rs.ValidationError, root: str) -> dict[str, str]:
    path = root + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.instance_path
    )
    return {"path": path, "message": error.message}
