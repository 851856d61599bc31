"""How a delivery is logged: bound to its ids, and one line per attempt."""

from __future__ import annotations

import structlog

from hookrelay.models import AttemptOutcome, ClaimedDelivery
from hookrelay.statuses import DeliveryStatus

log = structlog.get_logger("hookrelay.delivery")
# Compared for every attempt, so read once: on Python 3.11 each read of an enum member is a
# descriptor call (about 0.15 µs).
_DEAD = DeliveryStatus.DEAD


def bound_log(claim: ClaimedDelivery) -> structlog.stdlib.BoundLogger:
    """A logger that names the delivery, its event, endpoint and attempt."""
    bound: structlog.stdlib.BoundLogger = log.bind(
        delivery_id=claim.id,
        event_id=claim.event_id,
        endpoint_id=claim.endpoint_id,
        attempt=claim.attempt_count,
    )
    return bound


def log_attempt(claim: ClaimedDelivery, outcome: AttemptOutcome, status: str) -> None:
    """Log a recorded attempt: a dead letter as a warning, as it needs someone to act (replay
    it, fix the endpoint); any other as news."""
    # Not through bound_log: binding costs a logger per delivery even when INFO is off.
    dead = status == _DEAD
    (log.warning if dead else log.info)(
        "delivery dead-lettered" if dead else "delivery attempted",
        delivery_id=claim.id,
        event_id=claim.event_id,
        endpoint_id=claim.endpoint_id,
        attempt=claim.attempt_count,
        status=status,
        status_code=outcome.status_code,
        error_kind=outcome.error_kind,
        duration_ms=outcome.duration_ms,
    )
