"""Validation against the JSON Schemas in `schemas/`: event payloads and request bodies."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

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


@cache
def _schemas(kind: str) -> dict[str, dict[str, Any]]:
    """The schemas of `schemas/<kind>/`, by file name without `.json`."""
    folder: Path = resource_dir("schemas") / kind
    return {path.stem: orjson.loads(path.read_bytes()) for path in sorted(folder.glob("*.json"))}


@cache
def _validators(kind: str) -> dict[str, Draft202012Validator]:
    schemas = _schemas(kind)
    # A schema may name a sibling file ("$ref": "event_create.json"): its $id resolves it.
    registry: Registry[Any] = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas.values()
    )
    validators = {}
    for name, schema in schemas.items():
        Draft202012Validator.check_schema(schema)
        validators[name] = Draft202012Validator(
            schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
    return validators


def validate_request(name: str, body: Any) -> dict[str, Any]:
    """Check a request body against `schemas/requests/<name>.json`; return it."""
    quick = _quick_checks("requests").get(name)
    if quick is None or not quick(body):
        _raise_errors(_validators("requests")[name], body, "the request body is invalid")
    assert isinstance(body, dict)
    return body


# Quick checks: the schemas that only use the keywords below are also compiled into plain
# Python, which answers "valid" several times faster than jsonschema (every event of a batch
# goes through one). A quick check never accepts what the schema refuses; when it says no,
# jsonschema looks again and names the errors.
Check = Callable[[Any], bool]
_ANNOTATIONS = {"$schema", "$id", "title", "description"}
_TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


@cache
def _quick_checks(kind: str) -> dict[str, Check]:
    schemas = _schemas(kind)
    checks = {}
    for name, schema in schemas.items():
        check = quick_check(inline_refs(schema, schemas))
        if check is not None:
            checks[name] = check
    return checks


def inline_refs(schema: Any, siblings: dict[str, dict[str, Any]]) -> Any:
    """`schema` with each `{"$ref": "<name>.json"}` replaced by that sibling schema (inlined
    too): the same rule, in keywords the quick checks know. Other references stay."""
    if isinstance(schema, list):
        return [inline_refs(item, siblings) for item in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if set(schema) == {"$ref"} and isinstance(ref, str) and ref.removesuffix(".json") in siblings:
        return inline_refs(siblings[ref.removesuffix(".json")], siblings)
    return {key: inline_refs(value, siblings) for key, value in schema.items()}


def quick_check(schema: Any) -> Check | None:
    """A plain-Python check for `schema`, or None if it uses a keyword this does not know."""
    if not isinstance(schema, dict) or not set(schema) <= _ANNOTATIONS | set(_KEYWORDS):
        return None
    parts: list[Check] = []
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS:
            continue
        part = _KEYWORDS[keyword](value, schema)
        if part is None:
            return None
        parts.append(part)
    return lambda instance: all(part(instance) for part in parts)


def _type(value: Any, _: dict[str, Any]) -> Check | None:
    wanted = _TYPES.get(value) if isinstance(value, str) else None
    if wanted is None:
        return None
    # type(x) is, not isinstance: a bool is not an integer here, nor a dict subclass an object.
    return lambda instance: type(instance) is wanted


def _properties(value: Any, schema: dict[str, Any]) -> Check | None:
    subs = {name: quick_check(sub) for name, sub in value.items()}
    checks = [(name, sub) for name, sub in subs.items() if sub is not None]
    if len(checks) < len(subs):
        return None
    closed = schema.get("additionalProperties") is False
    known = set(value)

    def check(instance: Any) -> bool:
        if not isinstance(instance, dict):
            return True  # "properties" says nothing of other types
        if closed and not instance.keys() <= known:
            return False
        return all(sub(instance[name]) for name, sub in checks if name in instance)

    return check


def _additional_properties(value: Any, schema: dict[str, Any]) -> Check | None:
    # Only `false`, and only beside "properties", which applies it.
    return (lambda _: True) if value is False and "properties" in schema else None


def _required(value: Any, _: dict[str, Any]) -> Check | None:
    names = tuple(value)
    return lambda instance: not isinstance(instance, dict) or all(n in instance for n in names)


def _bound(
    kind: type, measure: Callable[[Any], int], at_most: bool
) -> Callable[[Any, dict[str, Any]], Check | None]:
    def make(value: Any, _: dict[str, Any]) -> Check | None:
        if type(value) is not int:
            return None
        if at_most:
            return lambda instance: not isinstance(instance, kind) or measure(instance) <= value
        return lambda instance: not isinstance(instance, kind) or measure(instance) >= value

    return make


def _pattern(value: Any, _: dict[str, Any]) -> Check | None:
    compiled = re.compile(value)  # searched, not matched, as jsonschema does
    return lambda instance: not isinstance(instance, str) or compiled.search(instance) is not None


def _items(value: Any, _: dict[str, Any]) -> Check | None:
    sub = quick_check(value)
    if sub is None:
        return None
    return lambda instance: not isinstance(instance, list) or all(sub(item) for item in instance)


_KEYWORDS: dict[str, Callable[[Any, dict[str, Any]], Check | None]] = {
    "type": _type,
    "properties": _properties,
    "additionalProperties": _additional_properties,
    "required": _required,
    "maxLength": _bound(str, len, at_most=True),
    "minLength": _bound(str, len, at_most=False),
    "maxItems": _bound(list, len, at_most=True),
    "minItems": _bound(list, len, at_most=False),
    "pattern": _pattern,
    "items": _items,
}


def event_type_schema() -> dict[str, Any]:
    """The rule for an event type: the `type` of schemas/requests/event_create.json."""
    event_create = _validators("requests")["event_create"].schema
    assert isinstance(event_create, dict)
    return dict(event_create["properties"]["type"])


@cache
def _event_type_check() -> Check:
    return _compiled(event_type_schema())


def is_event_type(value: Any) -> bool:
    """Whether `value` is an event type (bounded, dotted lowercase words)."""
    return _event_type_check()(value)


def is_job_id(value: Any) -> bool:
    """Whether `value` is a job id (JOB_ID_SCHEMA)."""
    return _job_id_check(value)


def check_data_job_id(data: dict[str, Any]) -> None:
    """Refuse a `job_id` in an event's data, of any type, that is not a job id."""
    if "job_id" in data and not is_job_id(data["job_id"]):
        raise InvalidPayload(
            f"data.job_id must be {JOB_ID_RULE}",
            [{"path": "$.data.job_id", "message": f"is not a job id ({JOB_ID_RULE})"}],
        )


def validate_event_data(event_type: str, data: Any) -> None:
    """Check `data` against its type's schema; a custom type has none and is accepted."""
    if not is_event_type(event_type):
        raise InvalidPayload(
            "an event type is dotted lowercase words, like job.completed",
            [{"path": "$.type", "message": "does not match ^[a-z0-9_]+(\\.[a-z0-9_]+)+$"}],
        )
    validator = _validators("events").get(event_type)
    if validator is not None:
        _raise_errors(validator, data, f"the data of a {event_type} event is invalid", "$.data")


def _compiled(schema: dict[str, Any]) -> Check:
    check = quick_check(schema)
    if check is None:
        raise ValueError("a keyword of this schema has no quick check")
    return check


_job_id_check = _compiled(JOB_ID_SCHEMA)


def _raise_errors(
    validator: Draft202012Validator, document: Any, message: str, root: str = "$"
) -> None:
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        raise InvalidPayload(message, [_describe(e, root) for e in errors[:MAX_ERRORS_REPORTED]])


def _describe(error: ValidationError, root: str) -> dict[str, str]:
    path = root + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path
    )
    return {"path": path, "message": error.message}
