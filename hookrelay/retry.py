"""The retry policy: what an attempt's outcome means and when the next one is due. Pure."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from hookrelay.statuses import DeliveryStatus

JITTER = 0.2  # each delay is drawn from [0.8, 1.2] x its scheduled value
# Retry-After never pushes a retry further out than this.
RETRY_AFTER_CAP_S = 24 * 3600.0
RETRY_AFTER_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class Decision:
    """The state a delivery moves to after an attempt."""

    status: DeliveryStatus  # SUCCEEDED, RETRYING or DEAD
    next_attempt_at: datetime | None = None
    disable_endpoint: bool = False  # the receiver answered 410 Gone


def is_success(status_code: int | None) -> bool:
    """Only a 2xx answer is a success; 3xx are failures (redirects are never followed)."""
    return status_code is not None and 200 <= status_code < 300


def scheduled_delay(schedule_s: tuple[float, ...], attempts_made: int) -> float | None:
    """Return the delay before attempt `attempts_made + 1`, or None if none is left."""
    index = attempts_made - 1
    return schedule_s[index] if 0 <= index < len(schedule_s) else None


def jittered(delay_s: float, rng: random.Random) -> float:
    """Return `delay_s` moved by up to ±20%, so retries of many deliveries spread out."""
    return delay_s * rng.uniform(1 - JITTER, 1 + JITTER)


def clamp_retry_after(retry_after_s: float, delay_s: float) -> float:
    """Honour a receiver's Retry-After within [scheduled delay, 2x scheduled delay]; the cap
    limits how far Retry-After may push, never bringing a retry before its schedule."""
    ceiling = max(delay_s, min(2 * delay_s, RETRY_AFTER_CAP_S))
    return min(max(retry_after_s, delay_s), ceiling)


def decide(
    *,
    attempts_made: int,
    status_code: int | None,
    retry_after_s: float | None,
    schedule_s: tuple[float, ...],
    now: datetime,
    rng: random.Random,
) -> Decision:
    """Decide what follows attempt number `attempts_made` (counting from 1)."""
    if is_success(status_code):
        return Decision(DeliveryStatus.SUCCEEDED)
    if status_code == 410:
        return Decision(DeliveryStatus.DEAD, disable_endpoint=True)
    delay = scheduled_delay(schedule_s, attempts_made)
    if delay is None:
        return Decision(DeliveryStatus.DEAD)
    wait = jittered(delay, rng)
    if retry_after_s is not None and status_code in RETRY_AFTER_STATUSES:
        wait = clamp_retry_after(retry_after_s, delay)
    return Decision(DeliveryStatus.RETRYING, next_attempt_at=now + timedelta(seconds=wait))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Read a Retry-After header (seconds or an HTTP date) as seconds from `now`."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())
