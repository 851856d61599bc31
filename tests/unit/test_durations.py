"""Human durations: parsing, lists, formatting back, and moments given as a duration ago."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from hookrelay.durations import (
    format_duration,
    parse_duration,
    parse_duration_list,
    parse_moment,
)

NOW = datetime(2026, 3, 4, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("15s", 15.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("7", 7.0),
        ("0", 0.0),
        ("1.5s", 1.5),
        ("0.5", 0.5),
        ("  15s  ", 15.0),
        ("5 m", 300.0),
        ("\t2h\n", 7200.0),
    ],
)
def test_parse_duration_reads_number_and_unit(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "   ", "5x", "-1s", "ms", "s", "1.s", ".5s", "5 s s", "5S", "1h30m", "five"]
)
def test_parse_duration_refuses_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("50ms,100ms", (0.05, 0.1)),
        ("5s, 5m ,2h", (5.0, 300.0, 7200.0)),
        ("1", (1.0,)),
        ("1s,,2s,", (1.0, 2.0)),
    ],
)
def test_parse_duration_list_reads_each_comma_separated_duration(
    text: str, seconds: tuple[float, ...]
) -> None:
    assert parse_duration_list(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", " ", ",", " , "])
def test_parse_duration_list_refuses_an_empty_list(text: str) -> None:
    with pytest.raises(ValueError, match="empty list"):
        parse_duration_list(text)


def test_parse_duration_list_refuses_a_bad_element() -> None:
    with pytest.raises(ValueError, match="soon"):
        parse_duration_list("5s,soon,1h")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.25, "250ms"),
        (1.5, "1500ms"),
        (15.0, "15s"),
        (90.0, "90s"),
        (300.0, "5m"),
        (7200.0, "2h"),
        (86400.0, "24h"),
        (0.0, "0ms"),
    ],
)
def test_format_duration_uses_the_largest_whole_unit(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("text", ["250ms", "1500ms", "15s", "90s", "5m", "2h", "36h"])
def test_format_of_parse_round_trips(text: str) -> None:
    assert format_duration(parse_duration(text)) == text


@pytest.mark.parametrize("seconds", [0.001, 0.05, 1.0, 59.0, 61.0, 3600.0, 36000.0, 86400.0])
def test_parse_of_format_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "ago"),
    [
        ("1h", timedelta(hours=1)),
        ("30m", timedelta(minutes=30)),
        ("2d", timedelta(days=2)),
        ("90", timedelta(seconds=90)),
        ("250ms", timedelta(milliseconds=250)),
        ("0s", timedelta(0)),
    ],
)
def test_a_duration_names_that_long_before_now(text: str, ago: timedelta) -> None:
    assert parse_moment(text, NOW) == NOW - ago


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (
            "2026-01-02T03:04:05.250+02:00",
            datetime(2026, 1, 2, 3, 4, 5, 250_000, tzinfo=timezone(timedelta(hours=2))),
        ),
    ],
)
def test_an_rfc_3339_time_names_itself_whatever_now_is(text: str, moment: datetime) -> None:
    assert parse_moment(text, NOW) == moment


@pytest.mark.parametrize(
    "text", ["", "yesterday", "-1h", "1w", "h", "2026-01-02T03:04:05", "2026-01-02", "1h ago"]
)
def test_neither_a_zoned_time_nor_a_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a time or a duration"):
        parse_moment(text, NOW)


@pytest.mark.parametrize(
    "text", ["999999999h", "99999999999999999999d", "1" + "0" * 400 + "s", "800000d"]
)
def test_a_duration_reaching_back_before_any_time_is_refused_in_words_of_its_own(
    text: str,
) -> None:
    with pytest.raises(ValueError, match="reaches back before any time there is"):
        parse_moment(text, NOW)
