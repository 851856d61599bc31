"""Building events: the stored webhook body is made here, once, for every attempt to reuse."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from hookrelay.ids import new_id
from hookrelay.models import Event

# An Idempotency-Key binds its first answer for this long; then retention forgets it.
IDEMPOTENCY_TTL_S = 24 * 3600.0


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_event(
    app_id: str, event_type: str, data: dict[str, Any], job_id: str | None, now: datetime
) -> Event:
    """Return a new event whose body is `{"type", "timestamp", "data"}`, serialised once."""
    body = orjson.dumps({"type": event_type, "timestamp": rfc3339(now), "data": data})
    return Event(
        id=new_id("evt_"),
        app_id=app_id,
        type=event_type,
        job_id=job_id,
        body=body.decode(),
        created_at=now,
    )
