"""A claimed delivery for the unit tests of the delivery stages, changed as each test needs."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hookrelay.models import ClaimedDelivery

CLAIM = ClaimedDelivery(
    id="dlv_1",
    app_id="app_1",
    event_id="evt_1",
    endpoint_id="ep_1",
    status="sending",
    attempt_count=1,
    previous_status="pending",
    url="https://receiver.example/hook",
    signing="hmac",
    secret_ciphertext=b"sealed",
    secret_key_id="k1",
    headers={},
    rate_limit_per_s=None,
    previous_secret_ciphertext=None,
    previous_secret_key_id=None,
    replay_of=None,
    event_type="job.completed",
    body="{}",
)


def claimed(**changes: Any) -> ClaimedDelivery:
    """The first attempt at delivering evt_1 to ep_1, with `changes`."""
    return replace(CLAIM, **changes)
