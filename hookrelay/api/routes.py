"""Every route of the HTTP API, declared once: the router and /openapi.json are built from
this table."""

from __future__ import annotations

from aiohttp import web

from hookrelay.api.contract import API_ERRORS, Auth, Body, Route
from hookrelay.api.expect import expect_handler
from hookrelay.api.handlers import (
    apps,
    deliveries,
    endpoints,
    events,
    health,
    index,
    jobs,
    keys,
    metrics,
    pages,
    stream,
)
from hookrelay.api.middleware import STREAM_ROUTE
from hookrelay.api.state import ROUTE_NEEDS
from hookrelay.services.access import Grant

SEND_EVENTS = (Grant.SEND_EVENTS,)
READ_EVENTS = (Grant.READ_EVENTS,)
READ = (Grant.READ,)
MANAGE_APP = (Grant.MANAGE_APP,)
MANAGE_ENDPOINTS = (Grant.MANAGE_ENDPOINTS,)
REPLAY = (Grant.REPLAY,)
# The app itself (renamed, its uid changed, deleted with all it owns): a credential that may do
# everything in it, as the key made with the app may; never a portal session.
WHOLE_APP = tuple(Grant)

APP = "/v1/apps/{app_id}"
ENDPOINT = APP + "/endpoints/{endpoint_id}"
PAGE = ("limit", "cursor")
TIME_WINDOW = ("since", "until")

ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/",
        index.index,
        "What this server is (name, version) and links to where to go next",
        {200: "index"},
        auth=Auth.PUBLIC,
    ),
    Route(
        "GET", "/healthz", health.healthz, "The process is up", {200: "health"}, auth=Auth.PUBLIC
    ),
    Route(
        "GET",
        "/readyz",
        health.readyz,
        "Postgres and Redis answer",
        {200: "ready", 503: "ready"},
        auth=Auth.PUBLIC,
    ),
    Route(
        "GET",
        "/metrics",
        metrics.metrics,
        "Prometheus metrics",
        {200: Body("text/plain")},
        auth=Auth.METRICS_TOKEN,
        errors=(401, 503),
    ),
    Route(
        "GET", "/openapi.json", health.openapi, "This document", {200: "openapi"}, auth=Auth.PUBLIC
    ),
    Route(
        "GET",
        "/v1/me",
        keys.me,
        "The credential of this request: what it is, its app, what it may do",
        {200: "me"},
        needs=(),
    ),
    Route(
        "POST",
        "/v1/apps",
        apps.create_app,
        "Create an app (admin)",
        {201: "app_created"},
        request="app_create",
        needs=MANAGE_APP,
    ),
    Route(
        "GET", "/v1/apps", apps.list_apps, "List apps", {200: "app_page"}, query=PAGE, needs=READ
    ),
    Route("GET", APP, apps.get_app, "Get an app by id or uid", {200: "app"}, needs=READ),
    Route(
        "GET",
        APP + "/summary",
        apps.app_summary,
        "An app at a glance: its endpoints by status, those failing, its lost deliveries",
        {200: "app_summary"},
        needs=READ,
    ),
    Route(
        "PATCH",
        APP,
        apps.update_app,
        "Change an app",
        {200: "app"},
        request="app_update",
        needs=WHOLE_APP,
    ),
    Route(
        "DELETE",
        APP,
        apps.delete_app,
        "Delete an app and all it owns",
        {204: None},
        needs=WHOLE_APP,
    ),
    Route(
        "POST",
        APP + "/keys",
        keys.create_key,
        "Create an app key",
        {201: "app_key_created"},
        request="app_key_create",
        needs=MANAGE_APP,
    ),
    Route(
        "GET",
        APP + "/keys",
        keys.list_keys,
        "List app keys",
        {200: "app_key_page"},
        query=PAGE,
        needs=(Grant.READ_KEYS,),
    ),
    Route(
        "DELETE",
        APP + "/keys/{key_id}",
        keys.revoke_key,
        "Revoke an app key",
        {200: "app_key"},
        needs=MANAGE_APP,
    ),
    Route(
        "POST",
        APP + "/portal-sessions",
        keys.open_portal_session,
        "Open a console session on this app: a link and a token limited to its capabilities",
        {201: "portal_session_created"},
        request="portal_session_create",
        request_optional=True,
        needs=MANAGE_APP,
    ),
    Route(
        "DELETE",
        APP + "/portal-sessions",
        keys.end_portal_sessions,
        "End every console session of this app",
        {200: "portal_sessions_ended"},
        needs=MANAGE_APP,
    ),
    Route(
        "POST",
        APP + "/endpoints",
        endpoints.create_endpoint,
        "Register an endpoint",
        {201: "endpoint_with_secret"},
        request="endpoint_create",
        needs=MANAGE_ENDPOINTS,
    ),
    Route(
        "GET",
        APP + "/endpoints",
        endpoints.list_endpoints,
        "List endpoints",
        {200: "endpoint_page"},
        query=PAGE,
        needs=READ,
    ),
    Route(
        "GET", ENDPOINT, endpoints.get_endpoint, "Get an endpoint", {200: "endpoint"}, needs=READ
    ),
    Route(
        "PATCH",
        ENDPOINT,
        endpoints.update_endpoint,
        "Change an endpoint",
        {200: "endpoint"},
        request="endpoint_update",
        needs=MANAGE_ENDPOINTS,
    ),
    Route(
        "DELETE",
        ENDPOINT,
        endpoints.delete_endpoint,
        "Delete an endpoint",
        {204: None},
        needs=MANAGE_ENDPOINTS,
    ),
    Route(
        "GET",
        ENDPOINT + "/stats",
        endpoints.endpoint_stats,
        "An endpoint's health: attempts and successes in the last hour and day, what waits",
        {200: "endpoint_stats"},
        needs=READ,
    ),
    Route(
        "GET",
        ENDPOINT + "/secret",
        endpoints.get_endpoint_secret,
        "Get an endpoint's secret",
        {200: "secret"},
        needs=(Grant.READ_SECRETS,),
    ),
    Route(
        "POST",
        ENDPOINT + "/rotate-secret",
        endpoints.rotate_secret,
        "Rotate an endpoint's secret",
        {200: "endpoint_with_secret"},
        needs=(Grant.MANAGE_ENDPOINTS, Grant.READ_SECRETS),
    ),
    Route(
        "POST",
        ENDPOINT + "/send-example",
        endpoints.send_example,
        "Send this endpoint alone an example event of a built-in type",
        {202: "example_sent"},
        request="example_send",
        needs=(Grant.SEND_TEST,),
    ),
    Route(
        "POST",
        ENDPOINT + "/recover",
        deliveries.recover_endpoint,
        "Re-send an endpoint's still-lost dead deliveries in a window",
        {202: "replay_result"},
        request="recover",
        needs=REPLAY,
    ),
    Route(
        "POST",
        APP + "/events",
        events.create_event,
        "Send an event",
        {202: "event"},
        request="event_create",
        headers=("Idempotency-Key",),
        needs=SEND_EVENTS,
    ),
    Route(
        "POST",
        APP + "/events/batch",
        events.create_events,
        "Send up to 1,000 events",
        {202: "event_batch_accepted"},
        request="event_batch",
        headers=("Idempotency-Key",),
        needs=SEND_EVENTS,
    ),
    Route(
        "GET",
        APP + "/events",
        events.list_events,
        "List events, newest first; with after or wait, long-poll for newer ones, oldest first",
        {200: "event_page"},
        query=("type", "job_id", *TIME_WINDOW, *PAGE, "after", "wait"),
        needs=READ_EVENTS,
    ),
    Route(
        "GET",
        APP + "/events/stream",
        stream.stream_events,
        "Stream events as Server-Sent Events (id: event id, event: type, data: webhook body)",
        {200: Body("text/event-stream")},
        query=("types", "job_id", "last_event_id", "token"),
        headers=("Last-Event-ID",),
        auth=Auth.BEARER_OR_STREAM_TOKEN,
        errors=(*API_ERRORS, 429),
        name=STREAM_ROUTE,
        allow_head=False,  # a stream has no end to answer a HEAD request with
        needs=READ_EVENTS,
    ),
    Route(
        "POST",
        APP + "/stream-tokens",
        stream.issue_stream_token,
        "Issue a short-lived token that opens the event stream (for EventSource)",
        {201: "stream_token"},
        request="stream_token_create",
        request_optional=True,
        needs=READ_EVENTS,
    ),
    Route(
        "GET",
        APP + "/jobs/{job_id}",
        jobs.get_job,
        "Get a job's current state, folded from its events",
        {200: "job"},
        needs=READ_EVENTS,
    ),
    Route(
        "GET",
        APP + "/events/{event_id}",
        events.get_event,
        "Get an event with its deliveries",
        {200: "event_with_deliveries"},
        needs=READ_EVENTS,
    ),
    Route(
        "GET",
        APP + "/deliveries",
        deliveries.list_deliveries,
        "List deliveries, newest first",
        {200: "delivery_page"},
        query=(
            "status",
            "endpoint_id",
            "event_type",
            "event_id",
            "job_id",
            "lost",
            *TIME_WINDOW,
            *PAGE,
        ),
        needs=READ,
    ),
    Route(
        "POST",
        APP + "/deliveries/replay",
        deliveries.replay_deliveries,
        "Replay every matching original that no replay has delivered or is still delivering",
        {202: "replay_result"},
        request="replay",
        request_optional=True,
        needs=REPLAY,
    ),
    Route(
        "GET",
        APP + "/deliveries/{delivery_id}",
        deliveries.get_delivery,
        "Get a delivery with its attempts",
        {200: "delivery_with_attempts"},
        needs=READ,
    ),
    Route(
        "POST",
        APP + "/deliveries/{delivery_id}/replay",
        deliveries.replay_delivery,
        "Replay one delivery",
        {202: "replayed"},
        needs=REPLAY,
    ),
    Route(
        "GET",
        APP + "/attempts",
        deliveries.list_attempts,
        "List attempts, newest first",
        {200: "attempt_page"},
        query=("delivery_id", "endpoint_id", *TIME_WINDOW, *PAGE),
        needs=READ,
    ),
)

# A path parameter never takes the name of a route beside it, so that /events/batch answers as
# that route does (a GET is 405 with Allow: POST), not as the event called "batch".
PARAMETER_RULES = {
    "event_id": "(?!batch$|stream$)[^{}/]+",
    "delivery_id": "(?!replay$)[^{}/]+",
}


def add_routes(app: web.Application, demo_page: bool = False) -> None:
    """Serve every route of ROUTES, the console and (if asked) the live job page, each
    answering `Expect: 100-continue` with hookrelay's expect handler."""
    definitions = [_definition(route) for route in ROUTES]
    definitions += [d for d in pages.CONSOLE if isinstance(d, web.RouteDef)]
    if demo_page:
        definitions += [d for d in pages.DEMO if isinstance(d, web.RouteDef)]
    needs = {route.handler: route.needs or () for route in ROUTES}
    assert len(needs) == len(ROUTES), "each route has a handler of its own (needs are by handler)"
    app[ROUTE_NEEDS] = needs
    app.router.add_routes(
        [
            web.RouteDef(
                d.method, d.path, d.handler, {**d.kwargs, "expect_handler": expect_handler}
            )
            for d in definitions
        ]
    )


def _definition(route: Route) -> web.RouteDef:
    options: dict[str, object] = {"name": route.name} if route.name else {}
    if route.method == "GET":
        options["allow_head"] = route.allow_head
    return web.RouteDef(route.method, router_path(route.path), route.handler, options)


def router_path(path: str) -> str:
    """`path` as the router matches it: each parameter that has a rule, with its rule."""
    for name, rule in PARAMETER_RULES.items():
        path = path.replace(f"{{{name}}}", f"{{{name}:{rule}}}")
    return path
