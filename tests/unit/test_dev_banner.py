"""What `hookrelay dev` says at start about failing deliveries."""

from __future__ import annotations

from hookrelay.dev.run import retry_schedule_text
from hookrelay.settings import Settings


def test_the_default_retry_schedule_is_spelled_out() -> None:
    assert retry_schedule_text(Settings().retry_schedule_s) == (
        "retries after 5s, 5m, 30m, 2h, 5h, 10h, 10h (+/-20% jitter), then dead-lettered"
    )


def test_a_configured_schedule_is_shown_in_its_own_units() -> None:
    schedule = Settings.from_env({"HOOKRELAY_RETRY_SCHEDULE": "50ms,1.5s,90m"}).retry_schedule_s
    assert retry_schedule_text(schedule) == (
        "retries after 50ms, 1500ms, 90m (+/-20% jitter), then dead-lettered"
    )


def test_no_retries_says_so() -> None:
    assert retry_schedule_text(()) == "no retries: a failed first attempt is dead-lettered"
