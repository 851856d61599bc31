"""GET /openapi.json: the API as it really is, built from the route table
(`hookrelay.api.routes`) and the JSON Schemas the handlers answer with (`schemas/responses/`)
and validate with (`schemas/requests/`)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from http import HTTPStatus
from typing import Any

from hookrelay import __version__
from hookrelay.api.contract import (
    Answer,
    Auth,
    Body,
    Route,
    Schema,
    response_schemas,
    schema_files,
)
from hookrelay.api.handlers.events import MAX_IDEMPOTENCY_KEY_CHARS
from hookrelay.api.http import MAX_PAGE_SIZE, MAX_WAIT_S
from hookrelay.api.routes import ROUTES
from hookrelay.schemas import JOB_ID_SCHEMA, event_type_schema

STRING: Schema = {"type": "string"}
TIME: Schema = {"type": "string", "format": "date-time"}
EVENT_TYPE: Schema = event_type_schema()


def _ref(component: str) -> Schema:
    return {"$ref": f"#/components/schemas/{component}"}


def _id(prefix: str) -> Schema:
    return {"type": "string", "pattern": f"^{prefix}[0-9a-f]{{32}}$(?!\\n)"}


QUERY_PARAMETERS: dict[str, Schema] = {
    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
    "cursor": STRING,
    "since": TIME,
    "until": TIME,
    "type": EVENT_TYPE,
    "event_type": EVENT_TYPE,
    "job_id": JOB_ID_SCHEMA,
    "event_id": _id("evt_"),
    "endpoint_id": _id("ep_"),
    "delivery_id": _id("dlv_"),
    "status": _ref("DeliveryStatus"),
    "lost": {
        "type": "boolean",
        "description": "Only dead originals that no replay has recovered (still lost)",
    },
    "after": {
        "type": "string",
        "description": "Long-poll: an event id, or the next_cursor of the last answer",
    },
    "wait": {
        "type": "number",
        "minimum": 0,
        "maximum": MAX_WAIT_S,
        "description": "Long-poll: seconds to wait for events when there are none yet",
    },
    "types": {"type": "string", "description": "Comma-separated event types"},
    "last_event_id": {
        "type": "string",
        "description": "Resume after this event (as the Last-Event-ID header)",
    },
    "token": {
        "type": "string",
        "description": "A stream token, for clients that cannot send Authorization",
    },
}
HEADER_PARAMETERS: dict[str, Schema] = {
    "Idempotency-Key": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY_CHARS},
    "Last-Event-ID": STRING,
}
PATH_PARAMETERS: dict[str, Schema] = {"job_id": JOB_ID_SCHEMA}

SECURITY: dict[Auth, list[dict[str, list[str]]]] = {
    Auth.PUBLIC: [],
    Auth.BEARER: [{"bearer": []}],
    Auth.BEARER_OR_STREAM_TOKEN: [{"bearer": []}, {"streamToken": []}],
    Auth.METRICS_TOKEN: [{}, {"metricsToken": []}],
}
SECURITY_SCHEMES: dict[str, Schema] = {
    "bearer": {"type": "http", "scheme": "bearer"},
    "streamToken": {"type": "apiKey", "in": "query", "name": "token"},
    "metricsToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "HOOKRELAY_METRICS_TOKEN, where it is set",
    },
}


def response_component(name: str) -> str:
    """The component of `schemas/responses/<name>.json`: app_key_page is AppKeyPage."""
    return "".join(part.capitalize() for part in name.split("_"))


def request_component(name: str) -> str:
    """The component of `schemas/requests/<name>.json`."""
    return f"request.{name}"


def _components() -> dict[str, Schema]:
    """Every schema file as a component, each reference to a file (`app.json`, or a part of
    one: `app.json#/$defs/fields`) or to a part of its own file pointing at that component."""
    components = {}
    for files, component in (
        (response_schemas(), response_component),
        (schema_files("requests"), request_component),
    ):
        for stem, schema in files.items():
            body = {key: value for key, value in schema.items() if key not in ("$schema", "$id")}
            components[component(stem)] = _component_refs(body, stem, component)
    return components


def _component_refs(node: Any, stem: str, component: Callable[[str], str]) -> Any:
    if isinstance(node, list):
        return [_component_refs(item, stem, component) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _component_refs(value, stem, component) for key, value in node.items()}
    if isinstance(node.get("$ref"), str):
        file, _, pointer = node["$ref"].partition("#")
        target = component(file.removesuffix(".json")) if file else component(stem)
        converted["$ref"] = _ref(target)["$ref"] + pointer
    return converted


def _content(answer: Answer) -> Schema:
    if answer is None:
        return {}
    if isinstance(answer, Body):
        return {"content": {answer.media_type: {"schema": STRING}}}
    return {"content": {"application/json": {"schema": _ref(response_component(answer))}}}


def _parameters(route: Route) -> list[Schema]:
    path_names = [part[1:-1] for part in route.path.split("/") if part.startswith("{")]
    return [
        *(
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": PATH_PARAMETERS.get(name, STRING),
            }
            for name in path_names
        ),
        *(
            {"name": name, "in": "query", "required": False, "schema": QUERY_PARAMETERS[name]}
            for name in route.query
        ),
        *(
            {"name": name, "in": "header", "required": False, "schema": HEADER_PARAMETERS[name]}
            for name in route.headers
        ),
    ]


def operation(route: Route) -> Schema:
    """The OpenAPI operation of `route`."""
    described: Schema = {
        "summary": route.summary,
        "operationId": route.operation_id(),
        "security": SECURITY[route.auth],
    }
    if route.needs:
        # What a key's scopes or a portal session's capabilities must grant (access.py).
        described["x-hookrelay-grants"] = [str(grant) for grant in route.needs]
    if parameters := _parameters(route):
        described["parameters"] = parameters
    described["responses"] = {
        str(status): {
            "description": route.summary if status < 300 else HTTPStatus(status).phrase,
            **_content(answer),
        }
        for status, answer in route.responses().items()
    }
    if route.request is not None:
        described["requestBody"] = {
            "required": not route.request_optional,
            "content": {"application/json": {"schema": _ref(request_component(route.request))}},
        }
    return described


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of every route."""
    paths: dict[str, dict[str, Schema]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hookrelay",
            "version": __version__,
            "description": "Event-callback gateway for AI jobs: signed webhooks with retries.",
        },
        "components": {"securitySchemes": SECURITY_SCHEMES, "schemas": _components()},
        "paths": paths,
    }
