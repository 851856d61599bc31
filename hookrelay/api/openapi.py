"""GET /openapi.json: the API as it really is. Request bodies come from the JSON Schemas in
`schemas/requests/` (the ones the handlers validate with); routes from the table below, which
a test compares with the router."""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson

from hookrelay import __version__
from hookrelay.api.handlers.index import DEMO_LINK, LINKS
from hookrelay.api.http import MAX_PAGE_SIZE, MAX_WAIT_S
from hookrelay.resources import resource_dir
from hookrelay.schemas import JOB_ID_SCHEMA, event_type_schema

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
TIME: Schema = {"type": "string", "format": "date-time"}
TIME_OR_NULL: Schema = {"type": ["string", "null"], "format": "date-time"}
STRING_OR_NULL: Schema = {"type": ["string", "null"]}
INT_OR_NULL: Schema = {"type": ["integer", "null"]}
DELIVERY_STATUS: Schema = {
    "enum": ["pending", "sending", "retrying", "succeeded", "dead", "held", "cancelled"]
}


def _object(properties: dict[str, Schema], optional: tuple[str, ...] = ()) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
    }


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _page(item: str) -> Schema:
    return _object({"data": {"type": "array", "items": _ref(item)}, "next_cursor": STRING_OR_NULL})


APP = {"id": STRING, "name": STRING, "uid": STRING_OR_NULL, "created_at": TIME, "updated_at": TIME}
APP_KEY = {
    "id": STRING,
    "name": STRING,
    "prefix": STRING,
    "created_at": TIME,
    "revoked_at": TIME_OR_NULL,
}
ENDPOINT = {
    "id": STRING,
    "app_id": STRING,
    "url": STRING,
    "description": STRING,
    "event_types": {"type": ["array", "null"], "items": STRING},
    "status": {"enum": ["active", "paused", "disabled"]},
    "disabled_reason": STRING_OR_NULL,
    "signing": {"enum": ["hmac", "ed25519"]},
    "headers": {"type": "object", "additionalProperties": STRING},
    "rate_limit_per_s": INT_OR_NULL,
    "public_key": STRING_OR_NULL,
    "previous_secret_expires_at": TIME_OR_NULL,
    "created_at": TIME,
    "updated_at": TIME,
}
SECRET = {"secret": STRING, "public_key": STRING}
EVENT = {
    "id": STRING,
    "type": STRING,
    "job_id": STRING_OR_NULL,
    "timestamp": STRING,
    "data": {"type": "object"},
    "created_at": TIME,
}
DELIVERY = {
    "id": STRING,
    "event_id": STRING,
    "endpoint_id": STRING,
    "status": DELIVERY_STATUS,
    "attempt_count": {"type": "integer"},
    "next_attempt_at": TIME_OR_NULL,
    "last_status_code": INT_OR_NULL,
    "last_error": STRING_OR_NULL,
    "created_at": TIME,
    "updated_at": TIME,
    "finished_at": TIME_OR_NULL,
    # The original a replay stands for; on an original, its latest replay and, if it was dead,
    # the first replay that succeeded (it is recovered).
    "replay_of": STRING_OR_NULL,
    "replayed_by": STRING_OR_NULL,
    "recovered_by": STRING_OR_NULL,
    "recovered_at": TIME_OR_NULL,
    "event_type": STRING,
    "endpoint_url": STRING,
}
ATTEMPT = {
    "id": STRING,
    "delivery_id": STRING,
    "attempt_number": {"type": "integer"},
    "started_at": TIME,
    "duration_ms": {"type": "integer"},
    "status_code": INT_OR_NULL,
    "error_kind": STRING_OR_NULL,
    "error_message": STRING_OR_NULL,
    "response_headers": {"type": ["object", "null"], "additionalProperties": STRING},
    "response_body": STRING_OR_NULL,
}
JOB = {
    "job_id": STRING,
    "state": {"enum": ["queued", "running", "action_required", "completed", "failed", "cancelled"]},
    "progress": _object({"percent": {"type": ["number", "null"]}, "message": STRING_OR_NULL}),
    "output": {},
    "artifacts": {"type": ["array", "null"]},
    "error": {},
    "action": {},
    "created_at": TIME,
    "updated_at": TIME_OR_NULL,
    "started_at": TIME_OR_NULL,
    "finished_at": TIME_OR_NULL,
    "event_count": {"type": "integer"},
    "last_event_id": STRING,
    "events": {"type": "array", "items": _ref("Event")},
}
STREAM_TOKEN = {
    "token": STRING,
    "app_id": STRING,
    "job_id": STRING_OR_NULL,
    "expires_at": {"type": "integer", "description": "Unix seconds"},
}
REPLAY = {
    "matched": {"type": "integer"},
    "replayed": {"type": "integer"},
    "replayable": {"type": "integer"},
}

RESPONSES: dict[str, Schema] = {
    "Error": _object(
        {
            "error": _object(
                {"code": STRING, "message": STRING, "details": {}}, optional=("details",)
            )
        }
    ),
    "App": _object(APP),
    "AppCreated": _object({**APP, "api_key": STRING}),
    "AppKey": _object(APP_KEY),
    "AppKeyCreated": _object({**APP_KEY, "key": STRING}),
    "Endpoint": _object(ENDPOINT),
    # An HMAC endpoint's public_key is null here (ENDPOINT's), as in every endpoint answer.
    "EndpointWithSecret": _object({**ENDPOINT, "secret": SECRET["secret"]}),
    "Secret": _object(SECRET, optional=("public_key",)),
    "Event": _object(EVENT),
    "EventWithDeliveries": _object(
        {**EVENT, "deliveries": {"type": "array", "items": _ref("Delivery")}}
    ),
    "EventBatchAccepted": _object({"data": {"type": "array", "items": _ref("Event")}}),
    "Delivery": _object(DELIVERY, optional=("event_type", "endpoint_url")),
    "DeliveryWithAttempts": _object(
        {**DELIVERY, "attempts": {"type": "array", "items": _ref("Attempt")}},
        optional=("event_type", "endpoint_url"),
    ),
    "Attempt": _object(ATTEMPT),
    "Job": _object(JOB),
    "StreamToken": _object(STREAM_TOKEN),
    "ReplayResult": _object(REPLAY),
    "Replayed": _object({"id": STRING, "replay_of": STRING}),
    "Health": _object({"status": STRING}),
    "Index": _object(
        {
            "name": STRING,
            "version": STRING,
            "links": _object(
                {name: STRING for name in (*LINKS, *DEMO_LINK)}, optional=tuple(DEMO_LINK)
            ),
        }
    ),
    "Ready": _object({"status": STRING, "checks": _object({"postgres": STRING, "redis": STRING})}),
    "AppPage": _page("App"),
    "AppKeyPage": _page("AppKey"),
    "EndpointPage": _page("Endpoint"),
    "EventPage": _page("Event"),
    "DeliveryPage": _page("Delivery"),
    "AttemptPage": _page("Attempt"),
}

# Every status an /v1 operation may answer besides its success, with the error shape.
ERROR_STATUSES = ("400", "401", "403", "404", "408", "409", "413", "415", "422", "503")
EVENT_TYPE: Schema = event_type_schema()


def _id(prefix: str) -> Schema:
    return {"type": "string", "pattern": f"^{prefix}[0-9a-f]{{32}}$(?!\\n)"}


PAGE = ("limit", "cursor")
TIME_WINDOW = ("since", "until")
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
    "status": DELIVERY_STATUS,
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

PATH_PARAMETERS: dict[str, Schema] = {"job_id": JOB_ID_SCHEMA}

APP_PATH = "/v1/apps/{app_id}"
ENDPOINT_PATH = APP_PATH + "/endpoints/{endpoint_id}"

# (method, path, summary, request schema, success status, response schema, query parameters)
OPERATIONS: list[tuple[str, str, str, str | None, str, str | None, tuple[str, ...]]] = [
    ("POST", "/v1/apps", "Create an app (admin)", "app_create", "201", "AppCreated", ()),
    ("GET", "/v1/apps", "List apps", None, "200", "AppPage", PAGE),
    ("GET", APP_PATH, "Get an app by id or uid", None, "200", "App", ()),
    ("PATCH", APP_PATH, "Change an app", "app_update", "200", "App", ()),
    ("DELETE", APP_PATH, "Delete an app and all it owns", None, "204", None, ()),
    ("POST", APP_PATH + "/keys", "Create an app key", "app_key_create", "201", "AppKeyCreated", ()),
    ("GET", APP_PATH + "/keys", "List app keys", None, "200", "AppKeyPage", PAGE),
    ("DELETE", APP_PATH + "/keys/{key_id}", "Revoke an app key", None, "200", "AppKey", ()),
    (
        "POST",
        APP_PATH + "/endpoints",
        "Register an endpoint",
        "endpoint_create",
        "201",
        "EndpointWithSecret",
        (),
    ),
    ("GET", APP_PATH + "/endpoints", "List endpoints", None, "200", "EndpointPage", PAGE),
    ("GET", ENDPOINT_PATH, "Get an endpoint", None, "200", "Endpoint", ()),
    ("PATCH", ENDPOINT_PATH, "Change an endpoint", "endpoint_update", "200", "Endpoint", ()),
    ("DELETE", ENDPOINT_PATH, "Delete an endpoint", None, "204", None, ()),
    ("GET", ENDPOINT_PATH + "/secret", "Get an endpoint's secret", None, "200", "Secret", ()),
    (
        "POST",
        ENDPOINT_PATH + "/rotate-secret",
        "Rotate an endpoint's secret",
        None,
        "200",
        "EndpointWithSecret",
        (),
    ),
    (
        "POST",
        ENDPOINT_PATH + "/recover",
        "Re-send an endpoint's still-lost dead deliveries in a window",
        "recover",
        "202",
        "ReplayResult",
        (),
    ),
    ("POST", APP_PATH + "/events", "Send an event", "event_create", "202", "Event", ()),
    (
        "POST",
        APP_PATH + "/events/batch",
        "Send up to 1,000 events",
        "event_batch",
        "202",
        "EventBatchAccepted",
        (),
    ),
    (
        "GET",
        APP_PATH + "/events",
        "List events, newest first; with after or wait, long-poll for newer ones, oldest first",
        None,
        "200",
        "EventPage",
        ("type", "job_id", *TIME_WINDOW, *PAGE, "after", "wait"),
    ),
    (
        "POST",
        APP_PATH + "/stream-tokens",
        "Issue a short-lived token that opens the event stream (for EventSource)",
        "stream_token_create",
        "201",
        "StreamToken",
        (),
    ),
    (
        "GET",
        APP_PATH + "/jobs/{job_id}",
        "Get a job's current state, folded from its events",
        None,
        "200",
        "Job",
        (),
    ),
    (
        "GET",
        APP_PATH + "/events/{event_id}",
        "Get an event with its deliveries",
        None,
        "200",
        "EventWithDeliveries",
        (),
    ),
    (
        "GET",
        APP_PATH + "/deliveries",
        "List deliveries, newest first",
        None,
        "200",
        "DeliveryPage",
        ("status", "endpoint_id", "event_type", "event_id", "job_id", *TIME_WINDOW, *PAGE),
    ),
    (
        "POST",
        APP_PATH + "/deliveries/replay",
        "Replay every matching original that no replay has delivered or is still delivering",
        "replay",
        "202",
        "ReplayResult",
        (),
    ),
    (
        "GET",
        APP_PATH + "/deliveries/{delivery_id}",
        "Get a delivery with its attempts",
        None,
        "200",
        "DeliveryWithAttempts",
        (),
    ),
    (
        "POST",
        APP_PATH + "/deliveries/{delivery_id}/replay",
        "Replay one delivery",
        None,
        "202",
        "Replayed",
        (),
    ),
    (
        "GET",
        APP_PATH + "/attempts",
        "List attempts, newest first",
        None,
        "200",
        "AttemptPage",
        ("delivery_id", "endpoint_id", *TIME_WINDOW, *PAGE),
    ),
]


def _request_schemas() -> dict[str, Schema]:
    schemas = {}
    for path in sorted((resource_dir("schemas") / "requests").glob("*.json")):
        schema = orjson.loads(path.read_bytes())
        schema.pop("$schema", None)
        schema.pop("$id", None)
        schemas[f"request.{path.stem}"] = _component_refs(schema)
    return schemas


def _component_refs(node: Any) -> Any:
    """The schema with each reference to a sibling file (`event_create.json`) pointing at that
    file's component instead."""
    if isinstance(node, list):
        return [_component_refs(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: _ref(f"request.{value.removesuffix('.json')}")["$ref"]
        if key == "$ref" and isinstance(value, str) and value.endswith(".json")
        else _component_refs(value)
        for key, value in node.items()
    }


def _operation(
    method: str,
    path: str,
    summary: str,
    request: str | None,
    status: str,
    response: str | None,
    query: tuple[str, ...],
) -> Schema:
    error = {"description": "An error", "content": {"application/json": {"schema": _ref("Error")}}}
    success: Schema = {"description": summary}
    if response is not None:
        success["content"] = {"application/json": {"schema": _ref(response)}}
    parameters: list[Schema] = [
        {"name": name, "in": "path", "required": True, "schema": PATH_PARAMETERS.get(name, STRING)}
        for name in _path_parameters(path)
    ]
    parameters += [
        {"name": name, "in": "query", "required": False, "schema": QUERY_PARAMETERS[name]}
        for name in query
    ]
    if (path.endswith("/events") and method == "POST") or path.endswith("/events/batch"):
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        )
    # Every field has a default (a bare bulk replay: every still-lost dead delivery).
    optional_body = path.endswith(("/stream-tokens", "/deliveries/replay"))
    operation: Schema = {
        "summary": summary,
        "operationId": f"{method.lower()}{path}".replace("/", "_")
        .replace("{", "")
        .replace("}", ""),
        "security": [{"bearer": []}],
        "parameters": parameters,
        "responses": {status: success, **{code: error for code in ERROR_STATUSES}},
    }
    if request is not None:
        operation["requestBody"] = {
            "required": not optional_body,
            "content": {"application/json": {"schema": _ref(f"request.{request}")}},
        }
    return operation


def _stream_operation() -> Schema:
    """The SSE stream: not JSON, so described apart from the table."""
    operation = _operation(
        "GET",
        APP_PATH + "/events/stream",
        "Stream events as Server-Sent Events (id: event id, event: type, data: webhook body)",
        None,
        "200",
        None,
        ("types", "job_id", "last_event_id", "token"),
    )
    operation["parameters"].append(
        {"name": "Last-Event-ID", "in": "header", "required": False, "schema": STRING}
    )
    operation["security"] = [{"bearer": []}, {"streamToken": []}]
    operation["responses"]["200"]["content"] = {"text/event-stream": {"schema": STRING}}
    operation["responses"]["429"] = operation["responses"]["400"]
    return operation


def _path_parameters(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of every route."""
    paths: dict[str, dict[str, Schema]] = {}
    for method, path, summary, request, status, response, query in OPERATIONS:
        operation = _operation(method, path, summary, request, status, response, query)
        paths.setdefault(path, {})[method.lower()] = operation
    paths[APP_PATH + "/events/stream"] = {"get": _stream_operation()}
    plain = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
    paths["/"] = {
        "get": {
            "summary": "What this server is (name, version) and links to where to go next",
            "operationId": "index",
            "security": [],
            "responses": {
                "200": {
                    "description": "The index",
                    "content": {"application/json": {"schema": _ref("Index")}},
                }
            },
        }
    }
    paths["/healthz"] = {
        "get": {
            "summary": "The process is up",
            "operationId": "healthz",
            "security": [],
            "responses": {
                "200": {
                    "description": "Up",
                    "content": {"application/json": {"schema": _ref("Health")}},
                }
            },
        }
    }
    ready = {"content": {"application/json": {"schema": _ref("Ready")}}}
    paths["/readyz"] = {
        "get": {
            "summary": "Postgres and Redis answer",
            "operationId": "readyz",
            "security": [],
            "responses": {
                "200": {"description": "Ready", **ready},
                "503": {"description": "A dependency is down", **ready},
            },
        }
    }
    paths["/metrics"] = {
        "get": {
            "summary": "Prometheus metrics",
            "operationId": "metrics",
            # Open, unless HOOKRELAY_METRICS_TOKEN is set.
            "security": [{}, {"metricsToken": []}],
            "responses": {
                "200": {"description": "Metrics", "content": {"text/plain": {"schema": STRING}}},
                "401": {
                    "description": "HOOKRELAY_METRICS_TOKEN is set and was not sent",
                    "content": {"application/json": {"schema": _ref("Error")}},
                },
                "503": {
                    "description": "A dependency is down",
                    "content": {"application/json": {"schema": _ref("Error")}},
                },
            },
        }
    }
    paths["/openapi.json"] = {
        "get": {
            "summary": "This document",
            "operationId": "openapi",
            "security": [],
            "responses": {"200": plain},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hookrelay",
            "version": __version__,
            "description": "Event-callback gateway for AI jobs: signed webhooks with retries.",
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "streamToken": {"type": "apiKey", "in": "query", "name": "token"},
                "metricsToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "HOOKRELAY_METRICS_TOKEN, where it is set",
                },
            },
            "schemas": {**RESPONSES, **_request_schemas()},
        },
        "paths": paths,
    }
