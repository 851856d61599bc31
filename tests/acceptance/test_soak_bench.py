"""`hookrelay bench soak` end to end, for a few seconds: its own stack, its reports, its JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hookrelay.bench.soak_report import LOG_TABLES

pytestmark = pytest.mark.acceptance

RATE = 50
SECONDS = 6
EVERY_S = 2


@pytest.mark.parametrize("batch", [1, 5])  # single events, and batch ingest
def test_a_short_soak_reports_every_table_and_writes_its_figures(
    tmp_path: Path, batch: int
) -> None:
    output = tmp_path / "soak.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKRELAY_")}
    done = subprocess.run(
        [
            *(sys.executable, "-m", "hookrelay", "bench", "soak", "--rate", str(RATE)),
            *("--minutes", str(SECONDS / 60), "--every", f"{EVERY_S}s"),
            *("--batch", str(batch), "--output", str(output)),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    reports = [line for line in done.stdout.splitlines() if line.startswith("[")]
    assert len(reports) == SECONDS // EVERY_S
    assert "verdict: not judged, the run is too short" in done.stdout

    figures = json.loads(output.read_text())
    assert figures["settings"]["retention"] == "2m"
    assert figures["settings"]["partition_interval"] == "1m"
    assert figures["settings"]["events_per_request"] == batch
    samples = figures["samples"]
    assert [round(s["t_s"]) for s in samples] == [2, 4, 6]
    last = samples[-1]
    accepted = last["ingest"]["accepted"]
    assert last["ingest"]["failed"] == 0
    assert RATE * SECONDS * 0.9 <= accepted <= RATE * SECONDS
    for name in LOG_TABLES:
        table = last["tables"][name]
        # Minutes made ahead (at least a quarter of an hour), not the default's days: the
        # interval reached the migration and the workers.
        assert table["partitioned"] is True and table["partitions"] >= 10, (name, table)
        assert table["bytes"] > 0
    assert last["tables"]["idempotency_keys"]["partitioned"] is False
    # Nothing is old enough to prune: the log holds every event accepted, each delivered once.
    assert last["tables"]["events"]["rows"] == accepted
    assert last["tables"]["deliveries"]["rows"] == accepted
    assert last["tables"]["events"]["removed"] == 0
    assert 0 < last["tables"]["events"]["oldest_row_age_s"] <= SECONDS + 1
    assert last["tables"]["idempotency_keys"]["rows"] == 0
    assert figures["verdict"]["judged"] is False and figures["verdict"]["passed"] is None
