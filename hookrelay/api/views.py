"""How domain records look in the API's JSON.

A record whose answer is its own fields is shown as its answer schema says: the schema's
required properties always, its other properties when they are not null. Adding a field to such
an answer is a migration, the dataclass field and the schema's property; nothing here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from hookrelay.api.contract import response_schemas
from hookrelay.jobs import Job
from hookrelay.models import ApiKey, App, Attempt, Delivery, Endpoint, Event, PortalSession

R = TypeVar("R")


def _viewer(schema_name: str, record: type[R]) -> Callable[[R], dict[str, Any]]:
    """The view of `record` that the answer schema `schema_name` describes."""
    schema = response_schemas()[schema_name]
    fields = schema.get("$defs", {}).get("fields", schema)
    required = tuple(fields["required"])
    optional = tuple(name for name in fields["properties"] if name not in fields["required"])

    def view(item: R) -> dict[str, Any]:
        answer = {name: getattr(item, name) for name in required}
        for name in optional:
            value = getattr(item, name)
            if value is not None:
                answer[name] = value
        return answer

    view.__name__ = f"{schema_name}_view"
    return view


app_view = _viewer("app", App)
endpoint_view = _viewer("endpoint", Endpoint)
api_key_view = _viewer("app_key", ApiKey)
delivery_view = _viewer("delivery", Delivery)
attempt_view = _viewer("attempt", Attempt)


def portal_session_view(session: PortalSession) -> dict[str, Any]:
    """A portal session as made, without its link and token (the handler adds them)."""
    return {
        "id": session.id,
        "app_id": session.app_id,
        "capabilities": session.capabilities,
        "expires_at": session.expires_at,
        "created_at": session.created_at,
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
