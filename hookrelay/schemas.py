"""Validation against the JSON Schemas in `schemas/`: event payloads and request bodies."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from hookrelay.errors import InvalidPayload
from hookrelay.resources import resource_dir

EVENT_TYPE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+\Z")
MAX_ERRORS_REPORTED = 20


@cache
def _validators(kind: str) -> dict[str, Draft202012Validator]:
    folder: Path = resource_dir("schemas") / kind
    validators = {}
    for path in sorted(folder.glob("*.json")):
        schema = orjson.loads(path.read_bytes())
        Draft202012Validator.check_schema(schema)
        validators[path.stem] = Draft202012Validator(
            schema, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
    return validators


def builtin_event_types() -> list[str]:
    """The event types that have a schema."""
    return sorted(_validators("events"))


def validate_request(name: str, body: Any) -> dict[str, Any]:
    """Check a request body against `schemas/requests/<name>.json`; return it."""
    _raise_errors(_validators("requests")[name], body, "the request body is invalid")
    assert isinstance(body, dict)
    return body


def validate_event_data(event_type: str, data: Any) -> None:
    """Check `data` against its type's schema; a custom type has none and is accepted."""
    if not EVENT_TYPE.match(event_type):
        raise InvalidPayload(
            "an event type is dotted lowercase words, like job.completed",
            [{"path": "$.type", "message": "does not match ^[a-z0-9_]+(\\.[a-z0-9_]+)+$"}],
        )
    validator = _validators("events").get(event_type)
    if validator is not None:
        _raise_errors(validator, data, f"the data of a {event_type} event is invalid", "$.data")


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
