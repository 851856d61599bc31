"""How domain records look in the API's JSON."""

from __future__ import annotations

from typing import Any

import orjson

from hookrelay.jobs import Job
from hookrelay.models import ApiKey, App, Attempt, Delivery, Endpoint, Event


def app_view(app: App) -> dict[str, Any]:
    return {
        "id": app.id,
        "name": app.name,
        "uid": app.uid,
        "created_at": app.created_at,
        "updated_at": app.updated_at,
    }


def endpoint_view(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "app_id": endpoint.app_id,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": endpoint.event_types,
        "status": endpoint.status,
        "disabled_reason": endpoint.disabled_reason,
        "signing": endpoint.signing,
        "headers": endpoint.headers,
        "rate_limit_per_s": endpoint.rate_limit_per_s,
        "public_key": endpoint.public_key,
        "previous_secret_expires_at": endpoint.previous_secret_expires_at,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    }


def api_key_view(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    }


def event_view(event: Event) -> dict[str, Any]:
    body = orjson.loads(event.body)
    return {
        "id": event.id,
        "type": event.type,
        "job_id": event.job_id,
        "timestamp": body["timestamp"],
        "data": body["data"],
        "created_at": event.created_at,
    }


def job_view(job: Job) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "state": job.state,
        "progress": {"percent": job.percent, "message": job.message},
        "output": job.output,
        "artifacts": job.artifacts,
        "error": job.error,
        "action": job.action,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "event_count": job.event_count,
        "last_event_id": job.last_event_id,
        "events": [event_view(e) for e in job.history],
    }


def delivery_view(delivery: Delivery) -> dict[str, Any]:
    view = {
        "id": delivery.id,
        "event_id": delivery.event_id,
        "endpoint_id": delivery.endpoint_id,
        "status": delivery.status,
        "attempt_count": delivery.attempt_count,
        "next_attempt_at": delivery.next_attempt_at,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "created_at": delivery.created_at,
        "updated_at": delivery.updated_at,
        "finished_at": delivery.finished_at,
        "replay_of": delivery.replay_of,
        "replayed_by": delivery.replayed_by,
        "recovered_by": delivery.recovered_by,
        "recovered_at": delivery.recovered_at,
    }
    if delivery.event_type is not None:
        view["event_type"] = delivery.event_type
    if delivery.endpoint_url is not None:
        view["endpoint_url"] = delivery.endpoint_url
    return view


def attempt_view(attempt: Attempt) -> dict[str, Any]:
    return {
        "id": attempt.id,
        "delivery_id": attempt.delivery_id,
        "attempt_number": attempt.attempt_number,
        "started_at": attempt.started_at,
        "duration_ms": attempt.duration_ms,
        "status_code": attempt.status_code,
        "error_kind": attempt.error_kind,
        "error_message": attempt.error_message,
        "response_headers": attempt.response_headers,
        "response_body": attempt.response_body,
    }
