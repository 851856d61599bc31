"""Parsing of human durations (`250ms`, `15s`, `5m`, `2h`; a bare number means seconds), and of
moments given as a time or as a duration ago."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(text: str) -> float:
    """Return the duration `text` names, in seconds."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 250ms, 15s, 5m, 2h)")
    number, unit = match.groups()
    return float(number) * _UNIT_SECONDS[unit or "s"]


def parse_duration_list(text: str) -> tuple[float, ...]:
    """Return the comma-separated durations in `text`, in seconds."""
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        raise ValueError("an empty list of durations")
    return tuple(parse_duration(part) for part in parts)


def format_duration(seconds: float) -> str:
    """Return `seconds` in the shortest unit that keeps it whole (`1500ms`, `5m`)."""
    millis = round(seconds * 1000)
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if millis and millis % size == 0:
            return f"{millis // size}{unit}"
    return f"{millis}ms"


def parse_moment(text: str, now: datetime) -> datetime:
    """Return the moment `text` names: an RFC 3339 time with its zone (`2026-01-02T03:04:05Z`),
    or a duration (`1h`, `30m`, `2d`) meaning that long before `now`."""
    if _DURATION.match(text):
        try:
            return now - timedelta(seconds=parse_duration(text))
        except OverflowError:  # too many seconds for a timedelta, or back before year 1
            raise ValueError(f"{text!r} reaches back before any time there is") from None
    try:
        return parse_time(text)
    except ValueError:
        raise ValueError(
            f"not a time or a duration: {text!r} (use e.g. 2026-01-02T03:04:05Z, or 1h for an"
            " hour ago)"
        ) from None


class NoTimeZone(ValueError):
    """A time that names no zone, so it names no moment."""


def parse_time(text: str) -> datetime:
    """Return the RFC 3339 time `text` names (`2026-01-02T03:04:05Z`); it must name its zone."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))  # ValueError if not a time
    if moment.tzinfo is None:
        raise NoTimeZone(f"{text!r} names no time zone (Z or +hh:mm)")
    return moment
