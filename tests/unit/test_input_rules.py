"""The rules for ids and names are declared once; every schema that names such a field says the
same, and every string a request stores has a bound."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from hookrelay.api.openapi import openapi_document
from hookrelay.errors import InvalidPayload
from hookrelay.resources import resource_dir
from hookrelay.schemas import (
    EVENT_TYPE_PATTERN,
    EVENT_TYPE_SCHEMA,
    JOB_ID_SCHEMA,
    event_type_schema,
    is_event_type,
    is_job_id,
    validate_event_data,
)

# What a client sends (responses/ describes what the API answers with).
SCHEMAS = sorted(
    path
    for kind in ("events", "requests")
    for path in (resource_dir("schemas") / kind).glob("*.json")
)


def _properties(node: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """(path, name, schema) of every named property in a schema, at any depth."""
    if isinstance(node, dict):
        for name, sub in (node.get("properties") or {}).items():
            yield path, name, sub
        for key, sub in node.items():
            yield from _properties(sub, f"{path}/{key}")
    elif isinstance(node, list):
        for n, sub in enumerate(node):
            yield from _properties(sub, f"{path}/{n}")


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_job_id_in_a_schema_is_the_one_job_id_rule(path: Path) -> None:
    schema = orjson.loads(path.read_bytes())
    for _, name, sub in _properties(schema):
        if name == "job_id":
            assert {k: v for k, v in sub.items() if k != "description"} == JOB_ID_SCHEMA


def test_the_job_id_query_and_path_parameters_are_the_one_rule() -> None:
    found = [
        parameter["schema"]
        for methods in openapi_document()["paths"].values()
        for operation in methods.values()
        for parameter in operation.get("parameters", [])
        if parameter["name"] == "job_id"
    ]
    assert len(found) >= 4  # events (list and long-poll), stream, deliveries, jobs/{job_id}
    assert all(schema == JOB_ID_SCHEMA for schema in found)


def test_every_event_type_in_a_request_schema_has_the_same_bound() -> None:
    rule = event_type_schema()
    for path in (resource_dir("schemas") / "requests").glob("*.json"):
        for _, name, sub in _properties(orjson.loads(path.read_bytes())):
            if name in ("event_type", "event_types"):
                items = sub.get("items", sub)
                assert (items["maxLength"], items["pattern"]) == (
                    rule["maxLength"],
                    rule["pattern"],
                ), path.name


def _strings(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every schema of a string a request may send, with where it is."""
    if isinstance(node, dict):
        kinds = node.get("type")
        if kinds == "string" or (isinstance(kinds, list) and "string" in kinds):
            yield path, node
        for key, sub in node.items():
            if key in ("properties",):
                for name, prop in sub.items():
                    yield from _strings(prop, f"{path}.{name}")
            elif key in ("items", "additionalProperties"):
                yield from _strings(sub, f"{path}[]")


@pytest.mark.parametrize(
    "path", sorted((resource_dir("schemas") / "requests").glob("*.json")), ids=lambda p: p.stem
)
def test_every_string_of_a_request_has_a_length_bound_or_an_enum(path: Path) -> None:
    for where, schema in _strings(orjson.loads(path.read_bytes()), "$"):
        assert "maxLength" in schema or "enum" in schema, f"{path.name} {where} is unbounded"


@pytest.mark.parametrize(
    ("value", "verdict"),
    [
        ("j", True),
        ("gen:2024-06-01.abc_1", True),
        ("j" * 200, True),
        ("j" * 201, False),
        ("", False),
        ("j\n", False),
        ("j k", False),
        ("caf\u00e9", False),
        ("j\u0000", False),
        (42, False),
        (None, False),
    ],
)
def test_a_job_id_is_1_to_200_safe_characters(value: object, verdict: bool) -> None:
    assert is_job_id(value) is verdict


@pytest.mark.parametrize(
    ("value", "verdict"),
    [
        ("job.completed", True),
        ("a." + "b" * 126, True),
        ("a." + "b" * 127, False),
        ("job", False),
        ("Job.completed", False),
        ("job.completed\n", False),
        ("", False),
    ],
)
def test_an_event_type_is_bounded_dotted_lowercase_words(value: str, verdict: bool) -> None:
    assert is_event_type(value) is verdict


def test_every_event_type_in_a_request_schema_is_the_one_event_type_rule() -> None:
    """The JSON files must hold the rule as a literal (they are served as they are in
    /openapi.json); this keeps each equal to EVENT_TYPE_SCHEMA."""
    seen = []
    for path in (resource_dir("schemas") / "requests").glob("*.json"):
        for _, name, sub in _properties(orjson.loads(path.read_bytes())):
            if name in ("event_type", "event_types") or (name == "type" and "pattern" in sub):
                rule = sub.get("items", sub)
                seen.append(path.stem)
                assert {k: v for k, v in rule.items() if k != "description"} == EVENT_TYPE_SCHEMA
    assert sorted(set(seen)) == ["endpoint_create", "endpoint_update", "event_create", "replay"]


def test_the_event_type_pattern_is_the_rule_with_no_trailing_newline() -> None:
    assert EVENT_TYPE_SCHEMA["pattern"] == EVENT_TYPE_PATTERN + "(?!\\n)"
    assert event_type_schema() == EVENT_TYPE_SCHEMA
    assert event_type_schema() is not EVENT_TYPE_SCHEMA  # a copy: callers cannot change it


def test_a_bad_event_type_is_reported_with_the_pattern() -> None:
    with pytest.raises(InvalidPayload) as caught:
        validate_event_data("Job.completed", {})
    assert caught.value.details == [
        {"path": "$.type", "message": "does not match ^[a-z0-9_]+(\\.[a-z0-9_]+)+$"}
    ]
