"""Schemathesis hooks for `make fuzz` (loaded through SCHEMATHESIS_HOOKS)."""

from __future__ import annotations

from typing import Any

import schemathesis

# A long-poll may wait up to 60 s for nothing; generated ones wait at most this long.
MAX_FUZZ_WAIT_S = 0.2


@schemathesis.hook
def map_query(ctx: Any, query: dict[str, Any] | None) -> dict[str, Any] | None:
    if query and "wait" in query:
        try:
            too_long = float(query["wait"]) > MAX_FUZZ_WAIT_S
        except (TypeError, ValueError, OverflowError):
            too_long = False  # not a number: refused at once
        if too_long:
            query["wait"] = MAX_FUZZ_WAIT_S
    return query
