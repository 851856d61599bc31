"""What one attempt's result means: its error kind, the delivery's next state and when the next
attempt is due, and whether the endpoint is to be disabled. Pure: no I/O and no clock (`now` and
`rng` are arguments)."""

from __future__ import annotations

import random
from datetime import datetime

from hookrelay import retry
from hookrelay.delivery.send import Response, Sent, TransportFailure
from hookrelay.models import AttemptOutcome, ClaimedDelivery
from hookrelay.statuses import ErrorKind


def attempt_outcome(
    claim: ClaimedDelivery,
    sent: Sent,
    *,
    schedule_s: tuple[float, ...],
    now: datetime,
    rng: random.Random,
) -> AttemptOutcome:
    """Judge the attempt `claim.attempt_count` from what sending it did, under the retry
    schedule; `now` is when it ended and `rng` draws the retry's jitter."""
    result = sent.result
    failure: TransportFailure | None
    if isinstance(result, TransportFailure):
        status_code, headers, body, failure = None, None, None, result
    else:
        status_code, headers, body = result.status_code, result.headers, result.body
        failure = _status_failure(result)
    decision = retry.decide(
        attempts_made=claim.attempt_count,
        status_code=status_code,
        # Seconds or an HTTP date; `decide` honours it only on a 429 or 503, clamped.
        retry_after_s=retry.parse_retry_after((headers or {}).get("retry-after"), now),
        schedule_s=schedule_s,
        now=now,
        rng=rng,
    )
    return AttemptOutcome(
        delivery_id=claim.id,
        attempt_number=claim.attempt_count,
        started_at=sent.started_at,
        duration_ms=sent.duration_ms,
        status_code=status_code,
        error_kind=failure.kind if failure else None,
        error_message=failure.message if failure else None,
        response_headers=headers,
        response_body=body,
        next_status=decision.status,
        next_attempt_at=decision.next_attempt_at,
        disable_endpoint=decision.disable_endpoint,
        replay_of=claim.replay_of,
    )


def _status_failure(response: Response) -> TransportFailure | None:
    """What went wrong with an answer: any status but a 2xx (whatever happened to the body),
    else a body cut short; a 2xx with its body cut short still counts as delivered."""
    if not retry.is_success(response.status_code):
        message = f"the receiver answered {response.status_code}"
        return TransportFailure(ErrorKind.HTTP_STATUS, message)
    return response.cut_short
