"""Holds an API answer to the route table: its status must be one the route declares, and its
body must be what the route names for that status (JSON valid against the schema in
`schemas/responses/`, another media type, or nothing)."""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from hookrelay.api.contract import ERROR, Answer, Body, Route, response_schemas
from hookrelay.api.routes import ROUTES

JSON = "application/json"
EVENT_STREAM = "text/event-stream"


@cache
def _routes() -> dict[tuple[str, str], Route]:
    return {(route.method, route.path): route for route in ROUTES}


def route_of(method: str, path: str) -> Route | None:
    """The route of the table for a method and a router path ("/v1/apps/{app_id}")."""
    return _routes().get((method, path))


@cache
def validator(name: str) -> Draft202012Validator:
    """A validator of `schemas/responses/<name>.json`; its references resolve to the others."""
    schemas = response_schemas()
    registry: Registry[Any] = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas.values()
    )
    return Draft202012Validator(
        schemas[name], registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def schema_errors(name: str, document: Any) -> list[str]:
    """How `document` fails the schema `name` (each error with its path), or nothing."""
    return [
        f"{error.json_path}: {error.message}" for error in validator(name).iter_errors(document)
    ]


def answer_problems(
    route: Route | None, status: int, content_type: str, body: bytes | None
) -> list[str]:
    """What is wrong with an answer to `route` (None: no route matched, so it must be the
    JSON error shape); `body` is None only for a stream (its body would never end)."""
    answer: Answer
    if route is None:
        answer = ERROR
    elif status in route.responses():
        answer = route.responses()[status]
    else:
        return [f"status {status} is not declared (declared: {sorted(route.responses())})"]
    if isinstance(answer, Body):
        if content_type != answer.media_type:
            return [f"content type {content_type}, declared {answer.media_type}"]
        return []
    if answer is None:
        return [] if not body else [f"a body where none is declared: {body[:200]!r}"]
    if content_type != JSON:
        return [f"content type {content_type}, declared {JSON} ({answer})"]
    assert body is not None
    return [f"{answer}: {problem}" for problem in schema_errors(answer, orjson.loads(body))]
