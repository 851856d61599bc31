"""Operational events: what hookrelay itself reports into an app (dead letters, recoveries,
disabled endpoints), delivered like any other event to the endpoints that subscribe to them."""

from __future__ import annotations

from datetime import datetime

from hookrelay.events import build_event
from hookrelay.models import ClaimedDelivery, Event, RecordedAttempt
from hookrelay.statuses import DeliveryStatus

ENDPOINT_DISABLED = "endpoint.disabled"
DELIVERY_DEAD = "delivery.dead"
DELIVERY_RECOVERED = "delivery.recovered"
OPERATIONAL_TYPES = frozenset({ENDPOINT_DISABLED, DELIVERY_DEAD, DELIVERY_RECOVERED})


def is_operational(event_type: str) -> bool:
    return event_type in OPERATIONAL_TYPES


def events_after_attempt(
    claim: ClaimedDelivery,
    recorded: RecordedAttempt,
    last_status_code: int | None,
    last_error: str | None,
    now: datetime,
) -> list[Event]:
    """The operational events an attempt's outcome calls for.

    Deliveries of operational events report nothing themselves, so a failing ops endpoint
    cannot set off a chain of reports about its own reports.
    """
    events: list[Event] = []
    if is_operational(claim.event_type):
        return events
    about = {
        "delivery_id": claim.id,
        "event_id": claim.event_id,
        "event_type": claim.event_type,
        "endpoint_id": claim.endpoint_id,
        "attempts": claim.attempt_count,
    }
    if recorded.delivery_status == DeliveryStatus.DEAD:
        data = {**about, "last_status_code": last_status_code, "last_error": last_error}
        events.append(build_event(claim.app_id, DELIVERY_DEAD, data, None, now))
    elif recorded.delivery_status == DeliveryStatus.SUCCEEDED and claim.attempt_count > 1:
        events.append(build_event(claim.app_id, DELIVERY_RECOVERED, about, None, now))
    if recorded.endpoint_disabled_reason is not None:
        data = {
            "endpoint_id": claim.endpoint_id,
            "url": claim.url,
            "reason": recorded.endpoint_disabled_reason,
        }
        events.append(build_event(claim.app_id, ENDPOINT_DISABLED, data, None, now))
    return events
