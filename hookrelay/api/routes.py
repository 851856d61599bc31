"""Every route of the HTTP API, and nothing else."""

from __future__ import annotations

from aiohttp import web

from hookrelay.api.handlers import apps, deliveries, endpoints, events, health, metrics

APP = "/v1/apps/{app_id}"


def add_routes(app: web.Application) -> None:
    app.router.add_routes(
        [
            web.get("/healthz", health.healthz),
            web.get("/readyz", health.readyz),
            web.get("/metrics", metrics.metrics),
            web.post("/v1/apps", apps.create_app),
            web.get("/v1/apps", apps.list_apps),
            web.get(APP, apps.get_app),
            web.patch(APP, apps.update_app),
            web.delete(APP, apps.delete_app),
            web.post(f"{APP}/endpoints", endpoints.create_endpoint),
            web.get(f"{APP}/endpoints", endpoints.list_endpoints),
            web.get(f"{APP}/endpoints/{{endpoint_id}}", endpoints.get_endpoint),
            web.patch(f"{APP}/endpoints/{{endpoint_id}}", endpoints.update_endpoint),
            web.delete(f"{APP}/endpoints/{{endpoint_id}}", endpoints.delete_endpoint),
            web.get(f"{APP}/endpoints/{{endpoint_id}}/secret", endpoints.get_endpoint_secret),
            web.post(f"{APP}/events", events.create_event),
            web.get(f"{APP}/events", events.list_events),
            web.get(f"{APP}/events/{{event_id}}", events.get_event),
            web.get(f"{APP}/deliveries", deliveries.list_deliveries),
            web.get(f"{APP}/deliveries/{{delivery_id}}", deliveries.get_delivery),
        ]
    )
