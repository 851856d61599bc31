"""The delivery outcome: what each send result means for the attempt and what follows it, under
the retry policy. Pure, so every case runs without a server or a clock."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookrelay.delivery.outcome import attempt_outcome
from hookrelay.delivery.send import Response, Sent, TransportFailure
from hookrelay.models import AttemptOutcome
from hookrelay.retry import JITTER, RETRY_AFTER_CAP_S
from hookrelay.statuses import DeliveryStatus, ErrorKind
from tests.unit.claims import claimed

SCHEDULE = (5.0, 300.0, 1800.0)
LAST_ATTEMPT = len(SCHEDULE) + 1  # the first attempt, then one per scheduled delay
NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
STARTED_AT = NOW - timedelta(milliseconds=250)


SUCCESS_CODES = [200, 201, 202, 203, 204, 206, 226, 299]
INFORMATIONAL_CODES = [100, 101, 199]
REDIRECT_CODES = [300, 301, 302, 303, 304, 307, 308]
CLIENT_ERROR_CODES = [400, 401, 403, 404, 405, 408, 409, 413, 415, 422, 451, 499]
SERVER_ERROR_CODES = [500, 501, 502, 504, 505, 507, 520, 599]
RETRY_AFTER_CODES = [429, 503]
FAILING_CODES = (
    INFORMATIONAL_CODES
    + REDIRECT_CODES
    + CLIENT_ERROR_CODES
    + SERVER_ERROR_CODES
    + RETRY_AFTER_CODES
)
TRANSPORT_KINDS = [kind for kind in ErrorKind if kind is not ErrorKind.HTTP_STATUS]
RETRYING_ATTEMPTS = [1, 2, 3]
DEAD_ATTEMPTS = [LAST_ATTEMPT, LAST_ATTEMPT + 1, 50]


def answered(status_code: int, headers: dict[str, str] | None = None, body: str = "ok") -> Sent:
    return Sent(STARTED_AT, 250, Response(status_code, headers or {}, body))


def failed(kind: ErrorKind, message: str = "it went wrong") -> Sent:
    return Sent(STARTED_AT, 250, TransportFailure(kind, message))


def outcome_of(
    sent: Sent,
    attempt: int = 1,
    schedule_s: tuple[float, ...] = SCHEDULE,
    seed: int = 7,
    now: datetime = NOW,
) -> AttemptOutcome:
    claim = claimed(attempt_count=attempt)
    return attempt_outcome(claim, sent, schedule_s=schedule_s, now=now, rng=random.Random(seed))


def wait_of(outcome: AttemptOutcome, now: datetime = NOW) -> float:
    assert outcome.next_attempt_at is not None
    return (outcome.next_attempt_at - now).total_seconds()


def assert_jittered_wait(outcome: AttemptOutcome, attempt: int) -> None:
    scheduled = SCHEDULE[attempt - 1]
    assert scheduled * (1 - JITTER) <= wait_of(outcome) <= scheduled * (1 + JITTER)


# 2xx


@pytest.mark.parametrize("status_code", SUCCESS_CODES)
@pytest.mark.parametrize("attempt", [*RETRYING_ATTEMPTS, LAST_ATTEMPT])
def test_a_2xx_answer_succeeds_at_any_attempt(status_code: int, attempt: int) -> None:
    outcome = outcome_of(answered(status_code), attempt)
    assert outcome.next_status == DeliveryStatus.SUCCEEDED
    assert (outcome.error_kind, outcome.error_message) == (None, None)
    assert outcome.next_attempt_at is None
    assert not outcome.disable_endpoint
    assert outcome.status_code == status_code


@pytest.mark.parametrize("replay_of", [None, "dlv_0"])
def test_an_outcome_names_the_original_its_delivery_replays(replay_of: str | None) -> None:
    # Recording a replay's success marks its original recovered, found by this id alone.
    claim = claimed(replay_of=replay_of)
    for sent in (answered(200), answered(500)):
        outcome = attempt_outcome(claim, sent, schedule_s=SCHEDULE, now=NOW, rng=random.Random(1))
        assert outcome.replay_of == replay_of


@pytest.mark.parametrize("status_code", SUCCESS_CODES)
def test_a_2xx_answer_keeps_its_headers_and_body(status_code: int) -> None:
    headers = {"content-type": "text/plain", "x-request-id": "r-1"}
    outcome = outcome_of(answered(status_code, headers, body="thanks"))
    assert outcome.response_headers == headers
    assert outcome.response_body == "thanks"


def test_a_2xx_answer_with_retry_after_still_succeeds() -> None:
    outcome = outcome_of(answered(200, {"retry-after": "60"}))
    assert outcome.next_status == DeliveryStatus.SUCCEEDED
    assert outcome.next_attempt_at is None


@pytest.mark.parametrize("kind", TRANSPORT_KINDS)
def test_a_2xx_whose_body_was_cut_short_is_delivered_with_the_cut_recorded(
    kind: ErrorKind,
) -> None:
    cut = TransportFailure(kind, "reading the body failed")
    sent = Sent(STARTED_AT, 250, Response(200, {"server": "x"}, None, cut_short=cut))
    outcome = outcome_of(sent)
    assert outcome.next_status == DeliveryStatus.SUCCEEDED
    assert (outcome.error_kind, outcome.error_message) == (kind, "reading the body failed")
    assert outcome.status_code == 200
    assert outcome.response_body is None
    assert outcome.response_headers == {"server": "x"}


# Every other status: a failed attempt of kind http_status


@pytest.mark.parametrize("status_code", FAILING_CODES)
@pytest.mark.parametrize("attempt", RETRYING_ATTEMPTS)
def test_a_non_2xx_answer_retries_on_schedule_while_attempts_remain(
    status_code: int, attempt: int
) -> None:
    outcome = outcome_of(answered(status_code), attempt)
    assert outcome.next_status == DeliveryStatus.RETRYING
    assert outcome.error_kind == ErrorKind.HTTP_STATUS
    assert outcome.error_message == f"the receiver answered {status_code}"
    assert outcome.status_code == status_code
    assert not outcome.disable_endpoint
    assert_jittered_wait(outcome, attempt)


@pytest.mark.parametrize("status_code", REDIRECT_CODES)
def test_a_redirect_is_a_failure_with_its_location_kept(status_code: int) -> None:
    sent = answered(status_code, {"location": "https://elsewhere.example/"})
    outcome = outcome_of(sent)
    assert outcome.next_status == DeliveryStatus.RETRYING
    assert outcome.response_headers == {"location": "https://elsewhere.example/"}


@pytest.mark.parametrize("status_code", [*CLIENT_ERROR_CODES, *SERVER_ERROR_CODES])
def test_a_failing_answer_keeps_its_body_for_whoever_debugs_it(status_code: int) -> None:
    outcome = outcome_of(answered(status_code, body='{"error":"nope"}'))
    assert outcome.response_body == '{"error":"nope"}'


@pytest.mark.parametrize("kind", TRANSPORT_KINDS)
def test_a_failing_answer_cut_short_is_told_as_its_status(kind: ErrorKind) -> None:
    cut = TransportFailure(kind, "reading the body failed")
    outcome = outcome_of(Sent(STARTED_AT, 250, Response(500, {}, None, cut_short=cut)))
    assert outcome.error_kind == ErrorKind.HTTP_STATUS
    assert outcome.error_message == "the receiver answered 500"
    assert outcome.next_status == DeliveryStatus.RETRYING


# 410 Gone


@pytest.mark.parametrize("attempt", [*RETRYING_ATTEMPTS, *DEAD_ATTEMPTS])
def test_410_is_dead_at_once_and_disables_the_endpoint(attempt: int) -> None:
    outcome = outcome_of(answered(410), attempt)
    assert outcome.next_status == DeliveryStatus.DEAD
    assert outcome.disable_endpoint
    assert outcome.next_attempt_at is None
    assert outcome.error_kind == ErrorKind.HTTP_STATUS
    assert outcome.error_message == "the receiver answered 410"


@pytest.mark.parametrize("retry_after", ["1", "3600"])
def test_410_ignores_retry_after(retry_after: str) -> None:
    outcome = outcome_of(answered(410, {"retry-after": retry_after}))
    assert (outcome.next_status, outcome.disable_endpoint) == (DeliveryStatus.DEAD, True)


@pytest.mark.parametrize("status_code", [*SUCCESS_CODES, *FAILING_CODES])
def test_no_other_status_disables_the_endpoint(status_code: int) -> None:
    assert not outcome_of(answered(status_code)).disable_endpoint


# 429 and 503 with Retry-After


@pytest.mark.parametrize("status_code", RETRY_AFTER_CODES)
@pytest.mark.parametrize(
    ("retry_after", "expected_wait_s"),
    [
        pytest.param("7", 7.0, id="within-honoured"),
        pytest.param("5", 5.0, id="equal-to-schedule"),
        pytest.param("10", 10.0, id="twice-the-schedule"),
        pytest.param("1", 5.0, id="sooner-gives-the-schedule"),
        pytest.param("0", 5.0, id="zero-gives-the-schedule"),
        pytest.param("11", 10.0, id="later-gives-twice"),
        pytest.param("3600", 10.0, id="much-later-gives-twice"),
        pytest.param(" 8 ", 8.0, id="spaces-around"),
        pytest.param("007", 7.0, id="leading-zeros"),
    ],
)
def test_retry_after_in_seconds_is_honoured_within_the_schedule_and_twice_it(
    status_code: int, retry_after: str, expected_wait_s: float
) -> None:
    outcome = outcome_of(answered(status_code, {"retry-after": retry_after}))
    assert outcome.next_status == DeliveryStatus.RETRYING
    assert wait_of(outcome) == pytest.approx(expected_wait_s)
    assert outcome.response_headers == {"retry-after": retry_after}


@pytest.mark.parametrize("status_code", RETRY_AFTER_CODES)
@pytest.mark.parametrize(
    ("in_s", "expected_wait_s"),
    [(7, 7.0), (9, 9.0), (2, 5.0), (-30, 5.0), (86_400, 10.0)],
)
def test_retry_after_as_an_http_date_is_honoured_within_the_schedule_and_twice_it(
    status_code: int, in_s: int, expected_wait_s: float
) -> None:
    date = format_datetime(NOW + timedelta(seconds=in_s), usegmt=True)
    outcome = outcome_of(answered(status_code, {"retry-after": date}))
    assert wait_of(outcome) == pytest.approx(expected_wait_s)


@pytest.mark.parametrize("status_code", RETRY_AFTER_CODES)
@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_retry_after_is_clamped_at_each_attempt_to_twice_its_scheduled_delay(
    status_code: int, attempt: int
) -> None:
    outcome = outcome_of(answered(status_code, {"retry-after": "99999"}), attempt)
    assert wait_of(outcome) == pytest.approx(2 * SCHEDULE[attempt - 1])


@pytest.mark.parametrize("status_code", RETRY_AFTER_CODES)
def test_retry_after_never_goes_past_the_global_cap(status_code: int) -> None:
    schedule = (50_000.0,)  # twice that is past the one-day cap
    outcome = outcome_of(answered(status_code, {"retry-after": "999999"}), schedule_s=schedule)
    assert wait_of(outcome) == pytest.approx(RETRY_AFTER_CAP_S)


@pytest.mark.parametrize("status_code", RETRY_AFTER_CODES)
def test_retry_after_never_brings_a_retry_before_a_schedule_past_the_cap(
    status_code: int,
) -> None:
    schedule = (200_000.0,)
    outcome = outcome_of(answered(status_code, {"retry-after": "1"}), schedule_s=schedule)
    assert wait_of(outcome) == pytest.approx(200_000.0)


@pytest.mark.parametrize("status_code", RETRY_AFTER_CODES)
@pytest.mark.parametrize("attempt", DEAD_ATTEMPTS)
def test_retry_after_does_not_extend_the_schedule(status_code: int, attempt: int) -> None:
    outcome = outcome_of(answered(status_code, {"retry-after": "7"}), attempt)
    assert outcome.next_status == DeliveryStatus.DEAD


@pytest.mark.parametrize("status_code", RETRY_AFTER_CODES)
@pytest.mark.parametrize(
    "retry_after", ["soon", "1.5", "-5", "5s", "", "²", "Sat, 01 Jun 2024 12:02:00 -0000"]
)
def test_an_unreadable_retry_after_leaves_the_jittered_schedule(
    status_code: int, retry_after: str
) -> None:
    with_header = outcome_of(answered(status_code, {"retry-after": retry_after}), seed=11)
    without_header = outcome_of(answered(status_code), seed=11)
    assert with_header.next_attempt_at == without_header.next_attempt_at
    assert_jittered_wait(with_header, 1)


@pytest.mark.parametrize("status_code", RETRY_AFTER_CODES)
def test_no_retry_after_leaves_the_jittered_schedule(status_code: int) -> None:
    assert_jittered_wait(outcome_of(answered(status_code)), 1)


@pytest.mark.parametrize("status_code", [301, 400, 404, 408, *SERVER_ERROR_CODES])
@pytest.mark.parametrize("retry_after", ["9", "3600", "Sat, 01 Jun 2024 13:00:00 GMT"])
def test_retry_after_on_other_statuses_is_ignored(status_code: int, retry_after: str) -> None:
    with_header = outcome_of(answered(status_code, {"retry-after": retry_after}), seed=11)
    without_header = outcome_of(answered(status_code), seed=11)
    assert with_header.next_attempt_at == without_header.next_attempt_at


# Transport failures: no answer at all


@pytest.mark.parametrize("kind", TRANSPORT_KINDS)
@pytest.mark.parametrize("attempt", RETRYING_ATTEMPTS)
def test_a_transport_failure_retries_on_schedule_with_its_kind_and_message(
    kind: ErrorKind, attempt: int
) -> None:
    outcome = outcome_of(failed(kind, "no answer within 15s"), attempt)
    assert outcome.next_status == DeliveryStatus.RETRYING
    assert (outcome.error_kind, outcome.error_message) == (kind, "no answer within 15s")
    assert outcome.status_code is None
    assert (outcome.response_headers, outcome.response_body) == (None, None)
    assert not outcome.disable_endpoint
    assert_jittered_wait(outcome, attempt)


@pytest.mark.parametrize(
    ("sent", "kind"),
    [
        *[
            pytest.param(answered(code), ErrorKind.HTTP_STATUS, id=str(code))
            for code in FAILING_CODES
        ],
        *[pytest.param(failed(kind), kind, id=kind) for kind in TRANSPORT_KINDS],
    ],
)
@pytest.mark.parametrize("attempt", DEAD_ATTEMPTS)
def test_any_failure_on_the_last_attempt_is_dead(sent: Sent, kind: ErrorKind, attempt: int) -> None:
    outcome = outcome_of(sent, attempt)
    assert outcome.next_status == DeliveryStatus.DEAD
    assert outcome.next_attempt_at is None
    assert outcome.error_kind == kind
    assert not outcome.disable_endpoint


@pytest.mark.parametrize("kind", TRANSPORT_KINDS)
def test_a_transport_failure_with_an_empty_schedule_is_dead_at_once(kind: ErrorKind) -> None:
    assert outcome_of(failed(kind), schedule_s=()).next_status == DeliveryStatus.DEAD


@pytest.mark.parametrize("status_code", FAILING_CODES)
def test_a_failing_answer_with_an_empty_schedule_is_dead_at_once(status_code: int) -> None:
    assert outcome_of(answered(status_code), schedule_s=()).next_status == DeliveryStatus.DEAD


# What the outcome carries over


@pytest.mark.parametrize("sent", [answered(200), answered(500), failed(ErrorKind.TIMEOUT)])
def test_the_outcome_names_the_delivery_its_attempt_and_the_send_timing(sent: Sent) -> None:
    outcome = outcome_of(sent, attempt=2)
    assert (outcome.delivery_id, outcome.attempt_number) == ("dlv_1", 2)
    assert (outcome.started_at, outcome.duration_ms) == (STARTED_AT, 250)


@pytest.mark.parametrize("now", [NOW, datetime(2001, 1, 1, tzinfo=UTC), NOW + timedelta(days=400)])
def test_the_next_attempt_is_counted_from_the_given_now_not_the_clock(now: datetime) -> None:
    outcome = outcome_of(answered(500), now=now)
    assert 5.0 * (1 - JITTER) <= wait_of(outcome, now) <= 5.0 * (1 + JITTER)
    assert outcome.next_attempt_at is not None
    assert outcome.next_attempt_at.tzinfo is UTC


# Jitter, with a seeded rng


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("attempt", RETRYING_ATTEMPTS)
def test_jitter_stays_within_twenty_percent_of_the_schedule(seed: int, attempt: int) -> None:
    assert_jittered_wait(outcome_of(answered(500), attempt, seed=seed), attempt)


def test_the_same_seed_gives_the_same_outcome() -> None:
    first = outcome_of(answered(503), seed=5)
    random.seed(99)  # the module's own generator moves on: the outcome must not use it
    assert outcome_of(answered(503), seed=5) == first
    assert outcome_of(answered(503), seed=6) != first  # and the seed does matter


def test_jitter_spreads_retries_over_its_whole_range() -> None:
    waits = [wait_of(outcome_of(failed(ErrorKind.CONNECT), seed=seed)) for seed in range(2000)]
    assert min(waits) < 5.0 * (1 - JITTER) + 0.05
    assert max(waits) > 5.0 * (1 + JITTER) - 0.05
    assert len(set(waits)) > 1900


def test_retry_after_is_not_jittered() -> None:
    waits = {wait_of(outcome_of(answered(429, {"retry-after": "7"}), seed=s)) for s in range(50)}
    assert waits == {7.0}


# Properties

status_codes = st.integers(min_value=100, max_value=599)
attempts = st.integers(min_value=1, max_value=12)
schedules = st.lists(
    st.floats(min_value=0.001, max_value=200_000.0, allow_nan=False), min_size=0, max_size=8
).map(tuple)
retry_after_values = st.one_of(
    st.none(),
    st.integers(min_value=0, max_value=10**9).map(str),
    st.integers(min_value=-(10**6), max_value=10**7).map(
        lambda s: format_datetime(NOW + timedelta(seconds=s), usegmt=True)
    ),
    st.text(max_size=20),
)
seeds = st.integers(min_value=0, max_value=2**32)


def any_answer(status_code: int, retry_after: str | None) -> Sent:
    return answered(status_code, {} if retry_after is None else {"retry-after": retry_after})


@settings(max_examples=300)
@given(status_codes, attempts, schedules, retry_after_values, seeds)
def test_the_next_state_follows_the_status_and_the_attempts_left(
    status_code: int,
    attempt: int,
    schedule: tuple[float, ...],
    retry_after: str | None,
    seed: int,
) -> None:
    outcome = outcome_of(any_answer(status_code, retry_after), attempt, schedule, seed)
    if 200 <= status_code < 300:
        assert outcome.next_status == DeliveryStatus.SUCCEEDED
        assert outcome.error_kind is None
    elif status_code == 410:
        assert (outcome.next_status, outcome.disable_endpoint) == (DeliveryStatus.DEAD, True)
    elif attempt <= len(schedule):
        assert outcome.next_status == DeliveryStatus.RETRYING
    else:
        assert outcome.next_status == DeliveryStatus.DEAD
    assert (outcome.next_attempt_at is not None) == (outcome.next_status == "retrying")
    assert outcome.disable_endpoint == (status_code == 410)
    assert (outcome.error_kind is None) == (200 <= status_code < 300)


@settings(max_examples=300)
@given(st.sampled_from(RETRY_AFTER_CODES), attempts, schedules, retry_after_values, seeds)
def test_a_retry_after_answer_is_retried_within_the_schedule_and_twice_it_below_the_cap(
    status_code: int,
    attempt: int,
    schedule: tuple[float, ...],
    retry_after: str | None,
    seed: int,
) -> None:
    outcome = outcome_of(any_answer(status_code, retry_after), attempt, schedule, seed)
    if attempt > len(schedule):
        assert outcome.next_status == DeliveryStatus.DEAD
        return
    assert outcome.next_status == DeliveryStatus.RETRYING
    scheduled = schedule[attempt - 1]
    wait = wait_of(outcome)
    # Without a readable Retry-After, the jittered schedule; with one, never before the
    # schedule, never past twice it, never past the cap unless the schedule itself is.
    assert scheduled * (1 - JITTER) - 1e-6 <= wait <= 2 * scheduled + 1e-6
    assert wait <= max(scheduled * (1 + JITTER), RETRY_AFTER_CAP_S) + 1e-6
    if retry_after is not None and retry_after.strip().isascii() and retry_after.strip().isdigit():
        assert scheduled - 1e-6 <= wait <= max(scheduled, RETRY_AFTER_CAP_S) + 1e-6


@settings(max_examples=200)
@given(st.sampled_from(TRANSPORT_KINDS), attempts, schedules, seeds, st.text(max_size=50))
def test_a_transport_failure_keeps_its_kind_and_never_disables_the_endpoint(
    kind: ErrorKind, attempt: int, schedule: tuple[float, ...], seed: int, message: str
) -> None:
    outcome = outcome_of(failed(kind, message), attempt, schedule, seed)
    assert (outcome.error_kind, outcome.error_message) == (kind, message)
    assert outcome.status_code is None
    assert not outcome.disable_endpoint
    expected = DeliveryStatus.RETRYING if attempt <= len(schedule) else DeliveryStatus.DEAD
    assert outcome.next_status == expected


@settings(max_examples=100)
@given(status_codes, attempts, retry_after_values, seeds)
def test_the_outcome_depends_only_on_its_arguments(
    status_code: int, attempt: int, retry_after: str | None, seed: int
) -> None:
    sent = any_answer(status_code, retry_after)
    first = outcome_of(sent, attempt, seed=seed)
    random.seed(seed + 1)  # global randomness moves on; the outcome must not read it
    random.random()
    assert outcome_of(sent, attempt, seed=seed) == first
