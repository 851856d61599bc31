"""Prefixed, time-sortable ids (`evt_` + 12 hex digits of unix ms + 20 random hex digits).

The SQL function `hookrelay_id(prefix)` in the first migration makes the same shape, so ids
made in Python and in Postgres sort together.
"""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime

PREFIXES = ("app_", "key_", "ps_", "ep_", "evt_", "dlv_", "att_")
ID_PATTERN = re.compile(r"^(app|key|ps|ep|evt|dlv|att)_[0-9a-f]{32}$")
ID_BYTES = 16  # what follows the prefix: 32 hex digits


def new_id(prefix: str, now_ms: int | None = None) -> str:
    """Return a new id with `prefix` (one of PREFIXES)."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    millis = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    return f"{prefix}{millis:012x}{os.urandom(10).hex()}"


def id_bound(prefix: str, moment_ms: int) -> str:
    """The smallest id with `prefix` made at or after unix millisecond `moment_ms`: ids sort by
    time, so `id >= id_bound(...)` selects by creation time through the primary key."""
    return f"{prefix}{moment_ms:012x}"


def id_bound_at(prefix: str, moment: datetime) -> str:
    """`id_bound` of a datetime."""
    return id_bound(prefix, round(moment.timestamp() * 1000))


def made_at(id_: str) -> datetime:
    """When a time-sortable id was made."""
    return datetime.fromtimestamp(millis_of(id_) / 1000, UTC)


def moment_of(text: str, prefix: str) -> int | None:
    """The unix millisecond an id with `prefix` was made at (None if `text` is not one)."""
    return millis_of(text) if is_id(text, prefix) else None


def millis_of(id_or_bound: str) -> int:
    """The unix millisecond in an id, or in an id bound (`evt_` and 12 hex digits...), which
    it does not check."""
    return int(id_or_bound.split("_", 1)[1][:12], 16)


def is_id(text: str, prefix: str) -> bool:
    """Tell whether `text` is an id with `prefix`."""
    return text.startswith(prefix) and ID_PATTERN.fullmatch(text) is not None
