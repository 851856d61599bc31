"""Every route of the HTTP API, and nothing else."""

from __future__ import annotations

from aiohttp import web

from hookrelay.api.expect import expect_handler
from hookrelay.api.handlers import (
    apps,
    deliveries,
    demo,
    endpoints,
    events,
    health,
    index,
    jobs,
    keys,
    metrics,
    stream,
)
from hookrelay.api.middleware import STREAM_ROUTE

APP = "/v1/apps/{app_id}"
ENDPOINT = APP + "/endpoints/{endpoint_id}"
# A path parameter never takes the name of a route beside it, so that /events/batch answers as
# that route does (a GET is 405 with Allow: POST), not as the event called "batch".
EVENT = APP + "/events/{event_id:(?!batch$|stream$)[^{}/]+}"
DELIVERY = APP + "/deliveries/{delivery_id:(?!replay$)[^{}/]+}"


def add_routes(app: web.Application, demo_page: bool = False) -> None:
    _add(
        app,
        [
            web.get("/", index.index),
            web.get("/healthz", health.healthz),
            web.get("/readyz", health.readyz),
            web.get("/metrics", metrics.metrics),
            web.get("/openapi.json", health.openapi),
            web.post("/v1/apps", apps.create_app),
            web.get("/v1/apps", apps.list_apps),
            web.get(APP, apps.get_app),
            web.patch(APP, apps.update_app),
            web.delete(APP, apps.delete_app),
            web.post(f"{APP}/keys", keys.create_key),
            web.get(f"{APP}/keys", keys.list_keys),
            web.delete(f"{APP}/keys/{{key_id}}", keys.revoke_key),
            web.post(f"{APP}/endpoints", endpoints.create_endpoint),
            web.get(f"{APP}/endpoints", endpoints.list_endpoints),
            web.get(f"{ENDPOINT}", endpoints.get_endpoint),
            web.patch(f"{ENDPOINT}", endpoints.update_endpoint),
            web.delete(f"{ENDPOINT}", endpoints.delete_endpoint),
            web.get(f"{ENDPOINT}/secret", endpoints.get_endpoint_secret),
            web.post(f"{ENDPOINT}/rotate-secret", endpoints.rotate_secret),
            web.post(f"{ENDPOINT}/recover", deliveries.recover_endpoint),
            web.post(f"{APP}/events", events.create_event),
            web.post(f"{APP}/events/batch", events.create_events),
            web.get(f"{APP}/events", events.list_events),
            # No HEAD: a stream has no end to answer a HEAD request with.
            web.get(
                f"{APP}/events/stream", stream.stream_events, name=STREAM_ROUTE, allow_head=False
            ),
            web.post(f"{APP}/stream-tokens", stream.issue_stream_token),
            web.get(f"{APP}/jobs/{{job_id}}", jobs.get_job),
            web.get(EVENT, events.get_event),
            web.get(f"{APP}/deliveries", deliveries.list_deliveries),
            web.post(f"{APP}/deliveries/replay", deliveries.replay_deliveries),
            web.get(DELIVERY, deliveries.get_delivery),
            web.post(f"{DELIVERY}/replay", deliveries.replay_delivery),
            web.get(f"{APP}/attempts", deliveries.list_attempts),
        ],
    )
    if demo_page:
        _add(app, [web.get("/demo", demo.demo_page), web.get("/demo/{asset}", demo.demo_page)])


def _add(app: web.Application, routes: list[web.RouteDef]) -> None:
    """Add `routes`, each answering `Expect: 100-continue` with hookrelay's expect handler."""
    app.router.add_routes(
        [
            web.RouteDef(
                r.method, r.path, r.handler, {**r.kwargs, "expect_handler": expect_handler}
            )
            for r in routes
        ]
    )
