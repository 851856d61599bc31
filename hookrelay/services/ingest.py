"""Ingest: validate events, record them with their deliveries in one transaction (at most once
per Idempotency-Key), enqueue the deliveries due now, and tell the log's readers."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog

from hookrelay.coalesce import Coalescer, Outcome
from hookrelay.errors import (
    Conflict,
    Contention,
    DependencyUnavailable,
    HookrelayError,
    InvalidPayload,
)
from hookrelay.events import IDEMPOTENCY_TTL_S, build_event
from hookrelay.models import Event, EventWrite, Idempotency
from hookrelay.operational import is_operational
from hookrelay.schemas import (
    check_data_job_id,
    event_examples,
    validate_event_data,
    validate_request,
)
from hookrelay.services.enqueue import Enqueuer
from hookrelay.services.ports import CommitNotices, EventStore

log = structlog.get_logger(__name__)

# What an Idempotency-Key is bound to: each route's keys are its own.
SINGLE_ROUTE = "events"
BATCH_ROUTE = "events/batch"


# Single-event requests that one group commit records at most.
MAX_REQUESTS_PER_COMMIT = 256


class Ingest:
    """Takes events in: all of a request's or none.

    Concurrent single-event requests are recorded together (group commit, see Coalescer): one
    statement and one commit for all that arrived while the previous group was on its way, as
    batch ingest has for its events. Each request keeps its own validation (before it joins),
    its own Idempotency-Key, its own answer after the commit, and its own error: a group that
    fails for one request's values is recorded again request by request.
    """

    def __init__(self, events: EventStore, enqueuer: Enqueuer, notices: CommitNotices) -> None:
        self._events = events
        self._enqueuer = enqueuer
        self._notices = notices
        self._together: Coalescer[EventWrite, list[str] | None] = Coalescer(
            self._record_together, MAX_REQUESTS_PER_COMMIT
        )

    async def ingest(
        self,
        app_id: str,
        bodies: list[Any],
        idempotency_key: str | None,
        render: Callable[[list[Event]], Any],
        batch: bool = False,
    ) -> Any:
        """Validate and record events (all or none) with their deliveries, then enqueue those
        due now; return `render(events)`, or the first answer given to `idempotency_key` on
        the same route (the single-event one, or with `batch` the batch one)."""
        now = datetime.now(UTC)
        events = [
            event_from(app_id, body, now, f"$.events[{n}]" if len(bodies) > 1 else "$")
            for n, body in enumerate(bodies)
        ]
        idempotency = None
        if idempotency_key is not None:
            digest = hashlib.sha256(orjson.dumps(bodies, option=orjson.OPT_SORT_KEYS)).digest()
            route = BATCH_ROUTE if batch else SINGLE_ROUTE
            idempotency = Idempotency(idempotency_key, digest, IDEMPOTENCY_TTL_S, route)
        write = EventWrite(events, idempotency, render(events))
        # A batch is one statement already.
        due = None if batch else await self._together.submit(write)
        if due is None:
            answer, due = await self._events.insert_once(events, idempotency, write.answer)
        else:
            answer = write.answer
        if due:
            log.info("events accepted", app_id=app_id, events=len(events), deliveries=len(due))
            self._enqueuer.enqueue_new_soon(due)
        self._notices.committed(app_id)
        return answer

    async def send_example(self, app_id: str, endpoint_id: str, body: Any) -> tuple[Event, str]:
        """Send one endpoint alone an example event of a built-in type (its schema's example,
        under a job id of its own): an event in the log like any other, with one delivery.
        Returns the event and its delivery's id; 409 unless the endpoint is active."""
        event_type = validate_request("example_send", body)["type"]
        examples = event_examples()
        if event_type not in examples:
            raise InvalidPayload(
                "examples are of the built-in event types: " + ", ".join(examples),
                [{"path": "$.type", "message": "is not a built-in event type"}],
            )
        job_id = f"example_{secrets.token_hex(6)}"
        data = {**examples[event_type], "job_id": job_id}
        event = build_event(app_id, event_type, data, job_id, datetime.now(UTC))
        status, delivery_id = await self._events.insert_example(event, endpoint_id)
        if delivery_id is None:
            raise Conflict(
                f"the endpoint is {status}: resume or enable it before sending it an example"
            )
        log.info("example sent", app_id=app_id, endpoint_id=endpoint_id, event_type=event_type)
        self._enqueuer.enqueue_new_soon([delivery_id])
        self._notices.committed(app_id)
        return event, delivery_id

    async def _record_together(self, writes: list[EventWrite]) -> list[Outcome[list[str] | None]]:
        """Record a group; for each request, its deliveries due now, or None to record it
        alone (its key was taken before, or the group failed for a value of one request)."""
        try:
            return list(await self._events.insert_together(writes))
        except Contention:
            # A lock held elsewhere (on one app, say), or a deadlock lost: alone, each request
            # waits only for what it needs.
            return [None] * len(writes)
        except HookrelayError as exc:
            # Postgres unreachable is the same for each request alone; anything else (one
            # request's value, its app deleted meanwhile) may be one request's. (Any other
            # exception is a bug, raised to every request of the group, and none is written
            # again: without keys the statement commits by itself, before its answers are
            # sorted out.)
            if isinstance(exc, DependencyUnavailable) or len(writes) == 1:
                raise
            return [None] * len(writes)


def event_from(app_id: str, body: Any, now: datetime, path: str) -> Event:
    """The event a request's body describes, validated; an error's paths start at `path`."""
    try:
        body = validate_request("event_create", body)
        event_type: str = body["type"]
        if is_operational(event_type):
            raise InvalidPayload(
                f"{event_type} is reserved for events hookrelay itself reports",
                [{"path": "$.type", "message": "is a reserved operational event type"}],
            )
        data: dict[str, Any] = body["data"]
        job_id = _job_id(body, data)
        if job_id is not None and event_type.startswith("job.") and "job_id" not in data:
            data = {**data, "job_id": job_id}
        validate_event_data(event_type, data)
    except InvalidPayload as exc:
        if path != "$" and isinstance(exc.details, list):
            exc.details = [
                {**d, "path": path + d["path"][1:]} for d in exc.details if isinstance(d, dict)
            ]
        raise
    return build_event(app_id, event_type, data, job_id, now)


def _job_id(body: dict[str, Any], data: dict[str, Any]) -> str | None:
    """The job an event belongs to: `job_id` beside `data` or inside it (they must agree).
    The one beside is checked by the request's schema; the one inside, here, whatever the
    event's type."""
    check_data_job_id(data)
    outer = body.get("job_id")
    inner = data.get("job_id")
    if outer is not None and inner is not None and outer != inner:
        raise InvalidPayload(
            "job_id and data.job_id differ",
            [{"path": "$.job_id", "message": "must equal data.job_id when both are given"}],
        )
    job_id: str | None = outer if outer is not None else inner
    return job_id
