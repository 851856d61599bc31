"""Delivery metrics: counted in each worker process, summed in Redis (MetricTotals), shown by
the API.

Each summed field is one Prometheus sample name (`name{labels}`), so rendering needs no
parsing; counters and the cumulative histogram buckets only ever grow.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict

from hookrelay.broker.metrics import MetricTotals

ATTEMPT_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

DESCRIPTIONS = {
    "hookrelay_deliveries_total": ("counter", "Delivery attempts by the state they led to."),
    "hookrelay_attempt_duration_seconds": ("histogram", "Time from request sent to answer read."),
    "hookrelay_sweeper_reenqueued_total": (
        "counter",
        "Deliveries the sweeper enqueued again (overdue, or their lease expired).",
    ),
    "hookrelay_redeliveries_total": ("counter", "Deliveries sent again after a lease expired."),
    "hookrelay_deferred_total": ("counter", "Deliveries put off by an endpoint's limits."),
    "hookrelay_queue_lag_seconds": ("gauge", "Age of the oldest delivery that is due."),
}


def _outcome_field(outcome: str) -> str:
    return 'hookrelay_deliveries_total{outcome="' + outcome + '"}'


_OUTCOME_FIELDS = {o: _outcome_field(o) for o in ("succeeded", "retrying", "dead")}
_BUCKET_FIELDS = [
    *(
        f'hookrelay_attempt_duration_seconds_bucket{{le="{bound:g}"}}'
        for bound in ATTEMPT_BUCKETS_S
    ),
    'hookrelay_attempt_duration_seconds_bucket{le="+Inf"}',
]


class DeliveryMetrics:
    """In-process counts since the last flush."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._sums: defaultdict[str, float] = defaultdict(float)
        # Attempts per duration bucket, each in its own bucket only; made cumulative (as
        # Prometheus buckets are) when flushed, not on every attempt.
        self._buckets = [0] * len(_BUCKET_FIELDS)

    def attempt(self, outcome: str, duration_s: float) -> None:
        """Count one attempt: called for every delivery, so it only bumps counters."""
        self._counts[_OUTCOME_FIELDS.get(outcome) or _outcome_field(outcome)] += 1
        self._buckets[bisect.bisect_left(ATTEMPT_BUCKETS_S, duration_s)] += 1
        self._sums["hookrelay_attempt_duration_seconds_sum"] += duration_s

    def count(self, name: str, by: int = 1) -> None:
        self._counts[name] += by

    def take(self) -> tuple[Counter[str], defaultdict[str, float]]:
        """What was counted since the last take, as amounts to add to each field (histogram
        buckets cumulative); counting starts afresh."""
        counts, sums, buckets = self._counts, self._sums, self._buckets
        self._counts, self._sums = Counter(), defaultdict(float)
        self._buckets = [0] * len(_BUCKET_FIELDS)
        # An attempt counts in its own bucket and every larger one.
        running = 0
        for field, attempts in zip(_BUCKET_FIELDS, buckets, strict=True):
            running += attempts
            if running:
                counts[field] += running
        if running:
            counts["hookrelay_attempt_duration_seconds_count"] += running
        return counts, sums

    async def flush(self, totals: MetricTotals) -> None:
        """Add what was counted to the shared totals, in one round trip."""
        counts, sums = self.take()
        if not counts and not sums:
            return
        try:
            await totals.add(counts, sums)
        except Exception:
            # Keep the counts for the next flush rather than lose them to a Redis hiccup.
            self._counts.update(counts)
            for field, total in sums.items():
                self._sums[field] += total
            raise


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render(samples: dict[str, float], queue_lag_s: float | None) -> str:
    """Render samples (field name → value) in the Prometheus text format."""
    samples = dict(samples)
    samples["hookrelay_queue_lag_seconds"] = queue_lag_s or 0.0
    lines = []
    for name, (kind, text) in DESCRIPTIONS.items():
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        own = (f for f in samples if f == name or f.startswith((name + "{", name + "_")))
        for field in sorted(own, key=_exposition_order):
            lines.append(f"{field} {_number(samples[field])}")
    return "\n".join(lines) + "\n"


def _exposition_order(field: str) -> tuple[int, str, float]:
    """A histogram's buckets first, by their bound (+Inf last), as the text format requires;
    then the other fields by name."""
    name, _, labels = field.partition('_bucket{le="')
    if not labels:
        return (1, field, 0.0)
    bound = labels.split('"', 1)[0]
    return (0, name, math.inf if bound == "+Inf" else float(bound))
