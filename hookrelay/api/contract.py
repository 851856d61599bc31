"""What a route of the HTTP API is, declared once: `hookrelay.api.routes` lists them, the router
and /openapi.json are both built from that list. Answers are described by the JSON Schemas in
`schemas/responses/` (request bodies by those in `schemas/requests/`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aiohttp import web

from hookrelay.schemas import loaded_schemas
from hookrelay.services.access import Grant

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Schema = dict[str, Any]


class Auth(StrEnum):
    """What a caller must show to be served."""

    PUBLIC = "public"
    BEARER = "bearer"  # the admin token or an app key
    # As BEARER, or ?token= with a stream token: a browser's EventSource cannot send headers.
    BEARER_OR_STREAM_TOKEN = "bearer_or_stream_token"
    # Open, unless HOOKRELAY_METRICS_TOKEN is set.
    METRICS_TOKEN = "metrics_token"


@dataclass(frozen=True)
class Body:
    """An answer's body that is not JSON."""

    media_type: str


# An answer: the name of a schema in schemas/responses/, a body of another kind, or no body.
Answer = str | Body | None

ERROR = "error"
# Every status an /v1 route may answer besides its successes, each with the ERROR schema.
API_ERRORS = (400, 401, 403, 404, 408, 409, 413, 415, 422, 503)


@dataclass(frozen=True)
class Route:
    """One operation of the API: the router serves it, /openapi.json describes it."""

    method: str
    path: str  # "{name}" for each parameter; a rule for its value is the router's business
    handler: Handler
    summary: str
    answers: Mapping[int, Answer]  # the statuses it succeeds with, and their bodies
    request: str | None = None  # the schema of the body, in schemas/requests/
    request_optional: bool = False  # every field has a default: no body asks for them all
    query: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    auth: Auth = Auth.BEARER
    # What a caller must be granted inside the app (hookrelay/services/access.py): a key or a
    # portal session lacking one is refused with 403. A route that needs a token must say
    # (None is refused below); () is any valid credential (GET /v1/me alone).
    needs: tuple[Grant, ...] | None = None
    # The statuses answered with the ERROR schema; by default API_ERRORS, or none if PUBLIC.
    errors: tuple[int, ...] | None = None
    name: str | None = None  # the aiohttp route's name
    allow_head: bool = True

    def __post_init__(self) -> None:
        needs_token = self.auth in (Auth.BEARER, Auth.BEARER_OR_STREAM_TOKEN)
        if needs_token != (self.needs is not None):
            raise ValueError(
                f"{self.method} {self.path}: a bearer route, and only one, names needs"
            )

    def responses(self) -> dict[int, Answer]:
        """Every status this route answers, with its body."""
        errors = self.errors
        if errors is None:
            errors = () if self.auth is Auth.PUBLIC else API_ERRORS
        return {**self.answers, **dict.fromkeys(errors, ERROR)}

    def operation_id(self) -> str:
        """The OpenAPI operationId: get_v1_apps_app_id for GET /v1/apps/{app_id}; outside /v1,
        the path's name (healthz, openapi; index for /)."""
        if not self.path.startswith("/v1/"):
            return self.path.strip("/").removesuffix(".json") or "index"
        return f"{self.method.lower()}{self.path}".translate(str.maketrans("/", "_", "{}"))


def schema_files(kind: str) -> dict[str, Schema]:
    """The schemas of `schemas/<kind>/` (requests, responses), by file name without `.json`."""
    return loaded_schemas(kind)


def response_schemas() -> dict[str, Schema]:
    """The schemas of the answers, `schemas/responses/`, by file name without `.json`."""
    return schema_files("responses")
