"""The retry policy: schedule, jitter, Retry-After, and what each attempt's outcome means."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from hookrelay.retry import (
    JITTER,
    RETRY_AFTER_CAP_S,
    Decision,
    clamp_retry_after,
    decide,
    is_success,
    jittered,
    parse_retry_after,
    scheduled_delay,
)

SCHEDULE = (5.0, 300.0, 1800.0)
NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


def decide_after(
    attempts_made: int,
    status_code: int | None,
    retry_after_s: float | None = None,
    schedule_s: tuple[float, ...] = SCHEDULE,
    seed: int = 7,
) -> Decision:
    return decide(
        attempts_made=attempts_made,
        status_code=status_code,
        retry_after_s=retry_after_s,
        schedule_s=schedule_s,
        now=NOW,
        rng=random.Random(seed),
    )


def wait_of(decision: Decision) -> float:
    assert decision.next_attempt_at is not None
    return (decision.next_attempt_at - NOW).total_seconds()


# The schedule


@pytest.mark.parametrize(
    ("attempts_made", "delay"), [(1, 5.0), (2, 300.0), (3, 1800.0), (4, None), (10, None)]
)
def test_scheduled_delay_follows_the_schedule(attempts_made: int, delay: float | None) -> None:
    assert scheduled_delay(SCHEDULE, attempts_made) == delay


@pytest.mark.parametrize("attempts_made", [0, -1])
def test_scheduled_delay_before_any_attempt_is_none(attempts_made: int) -> None:
    assert scheduled_delay(SCHEDULE, attempts_made) is None


def test_scheduled_delay_of_an_empty_schedule_is_none() -> None:
    assert scheduled_delay((), 1) is None


# Jitter


def test_jitter_stays_within_twenty_percent() -> None:
    rng = random.Random(20240601)
    draws = [jittered(100.0, rng) for _ in range(10_000)]
    assert all(80.0 <= draw <= 120.0 for draw in draws)


def test_jitter_spreads_over_its_whole_range() -> None:
    rng = random.Random(20240601)
    draws = [jittered(100.0, rng) for _ in range(10_000)]
    assert min(draws) < 81.0
    assert max(draws) > 119.0


def test_jitter_is_twenty_percent() -> None:
    assert pytest.approx(0.2) == JITTER


def test_jitter_is_reproducible_with_a_seeded_rng() -> None:
    assert jittered(60.0, random.Random(3)) == jittered(60.0, random.Random(3))


# Retry-After clamping


@pytest.mark.parametrize(
    ("retry_after_s", "delay_s", "expected"),
    [
        pytest.param(1.0, 10.0, 10.0, id="below-gives-the-scheduled-delay"),
        pytest.param(0.0, 10.0, 10.0, id="zero-gives-the-scheduled-delay"),
        pytest.param(10.0, 10.0, 10.0, id="equal-to-delay"),
        pytest.param(15.0, 10.0, 15.0, id="between-is-itself"),
        pytest.param(20.0, 10.0, 20.0, id="twice-is-itself"),
        pytest.param(21.0, 10.0, 20.0, id="above-twice-gives-twice"),
        pytest.param(1e9, 10.0, 20.0, id="huge-gives-twice"),
        pytest.param(float("inf"), 10.0, 20.0, id="infinite-gives-twice"),
        pytest.param(200_000.0, 50_000.0, RETRY_AFTER_CAP_S, id="global-cap"),
    ],
)
def test_clamp_retry_after(retry_after_s: float, delay_s: float, expected: float) -> None:
    assert clamp_retry_after(retry_after_s, delay_s) == expected


def test_retry_after_cap_is_one_day() -> None:
    assert RETRY_AFTER_CAP_S == 86_400.0


def test_retry_after_never_brings_a_retry_earlier_than_its_schedule() -> None:
    assert clamp_retry_after(200_000.0, 200_000.0) >= 200_000.0


# decide


@pytest.mark.parametrize("status_code", [200, 201, 202, 204, 299])
def test_2xx_is_success(status_code: int) -> None:
    assert decide_after(1, status_code) == Decision("succeeded")


@pytest.mark.parametrize("status_code", [200, 204])
def test_2xx_on_the_last_attempt_is_success(status_code: int) -> None:
    assert decide_after(len(SCHEDULE) + 1, status_code).status == "succeeded"


@pytest.mark.parametrize("status_code", [None, 100, 199, 300, 301, 302, 304, 400, 401, 404, 429])
def test_is_success_only_for_2xx(status_code: int | None) -> None:
    assert not is_success(status_code)


@pytest.mark.parametrize(
    "status_code", [None, 301, 302, 307, 400, 401, 403, 404, 408, 422, 429, 500, 502, 503, 504]
)
@pytest.mark.parametrize("attempts_made", [1, 2, 3])
def test_failure_retries_while_schedule_remains(
    status_code: int | None, attempts_made: int
) -> None:
    decision = decide_after(attempts_made, status_code)
    delay = SCHEDULE[attempts_made - 1]
    assert decision.status == "retrying"
    assert not decision.disable_endpoint
    assert delay * (1 - JITTER) <= wait_of(decision) <= delay * (1 + JITTER)


@pytest.mark.parametrize("status_code", [None, 302, 404, 429, 500, 503])
def test_failure_after_the_last_attempt_is_dead(status_code: int | None) -> None:
    assert decide_after(len(SCHEDULE) + 1, status_code) == Decision("dead")


def test_failure_with_an_empty_schedule_is_dead_at_once() -> None:
    assert decide_after(1, 500, schedule_s=()) == Decision("dead")


@pytest.mark.parametrize("attempts_made", [1, 2, len(SCHEDULE) + 1])
def test_410_is_dead_and_disables_the_endpoint(attempts_made: int) -> None:
    assert decide_after(attempts_made, 410) == Decision("dead", disable_endpoint=True)


@pytest.mark.parametrize("status_code", [429, 503])
@pytest.mark.parametrize(
    ("retry_after_s", "expected_wait"),
    [(7.0, 7.0), (1.0, 5.0), (0.0, 5.0), (10.0, 10.0), (3600.0, 10.0)],
)
def test_retry_after_on_429_or_503_is_honoured_and_clamped(
    status_code: int, retry_after_s: float, expected_wait: float
) -> None:
    decision = decide_after(1, status_code, retry_after_s)
    assert decision.status == "retrying"
    assert wait_of(decision) == pytest.approx(expected_wait)


@pytest.mark.parametrize("status_code", [500, 502, 504, 404, None])
def test_retry_after_on_other_failures_is_ignored(status_code: int | None) -> None:
    with_header = decide_after(1, status_code, retry_after_s=9.0, seed=11)
    without_header = decide_after(1, status_code, retry_after_s=None, seed=11)
    assert with_header == without_header


def test_retry_after_on_500_does_not_push_the_retry_out() -> None:
    assert wait_of(decide_after(1, 500, retry_after_s=3600.0)) <= 5.0 * (1 + JITTER)


def test_retry_after_does_not_extend_the_schedule() -> None:
    assert decide_after(len(SCHEDULE) + 1, 429, retry_after_s=7.0) == Decision("dead")


def test_retry_after_on_2xx_is_still_success() -> None:
    assert decide_after(1, 200, retry_after_s=60.0) == Decision("succeeded")


def test_next_attempt_is_in_the_timezone_of_now() -> None:
    decision = decide_after(1, 500)
    assert decision.next_attempt_at is not None
    assert decision.next_attempt_at.tzinfo is UTC


# parse_retry_after


@pytest.mark.parametrize(
    ("value", "seconds"), [("120", 120.0), ("0", 0.0), (" 30 ", 30.0), ("007", 7.0)]
)
def test_parse_retry_after_reads_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_parse_retry_after_reads_an_http_date() -> None:
    value = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(value, NOW) == 90.0


def test_parse_retry_after_reads_a_fixed_http_date() -> None:
    assert parse_retry_after("Sat, 01 Jun 2024 12:02:00 GMT", NOW) == 120.0


def test_parse_retry_after_of_a_past_date_is_zero() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", NOW) == 0.0


@pytest.mark.parametrize(
    "value",
    [None, "", "   ", "soon", "1.5", "-5", "5s", "tomorrow", "Sat, 01 Jun 2024 12:02:00 -0000"],
)
def test_parse_retry_after_of_garbage_is_none(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


@pytest.mark.parametrize("value", ["²", "①", "5²"])
def test_parse_retry_after_of_non_ascii_digits_is_none(value: str) -> None:
    assert parse_retry_after(value, NOW) is None
