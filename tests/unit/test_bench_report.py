"""The benchmark's arithmetic and report (the benchmark itself runs from `make bench`)."""

from __future__ import annotations

from hookrelay.bench.throughput import cpu_us_per, percentiles, report


def test_percentiles_pick_the_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentiles(values) == {"p50": 51.0, "p95": 96.0, "p99": 100.0}
    assert percentiles([]) == {"p50": 0.0, "p95": 0.0, "p99": 0.0}


def test_the_report_shows_every_rate_and_the_losses() -> None:
    latency = {"p50": 1.0, "p95": 2.0, "p99": 3.0}
    figures = {
        "mode": "quick",
        "workers": 1,
        "api_processes": 1,
        "machine": {"cpus": 2, "cpu": "test"},
        "raw_ceiling_per_s": 10000.0,
        "fixed_rates": [
            {
                "rate": r,
                "sent": r * 10,
                "lost": 0,
                "ingest_ms": latency,
                "delivery_ms": latency,
                "cpu_us_per_event": {"api": 400, "total": 1600},
            }
            for r in (50, 200)
        ],
        "single_flat_out": {
            "clients": 64,
            "deliveries_per_s": 2400.0,
            "received": 1000,
            "seconds": 0.42,
            "ratio_to_raw_ceiling": 0.24,
            "ingest_ms": latency,
            "failed": 0,
            "lost": 0,
            "cpu_us_per_event": {"api": 250, "total": 1100},
        },
        "max_rate": {
            "deliveries_per_s": 3000.0,
            "received": 100,
            "seconds": 1.0,
            "ratio_to_raw_ceiling": 0.3,
            "lost": 0,
            "cpu_us_per_delivery": {"postgres": 107, "worker1": 140, "total": 330},
        },
        "fan_out": {
            "endpoints": 100,
            "events": 1,
            "ingest_ms": latency,
            "all_received_ms": latency,
            "lost": 0,
        },
        "peak_rss_mb": {"api": 80.0, "worker1": 60.0},
        "losses": 0,
    }
    text = report(figures)
    assert "| 50/s | 500 | 0 | 1.0 / 2.0 / 3.0 | 1.0 / 2.0 / 3.0 |" in text
    assert "| 200/s | 2,000 |" in text
    assert "0.30 x the raw ceiling" in text
    assert "single events flat out (64 clients, one event per request): 2,400/s" in text
    assert "0.24 x the raw ceiling" in text
    assert "CPU per single event flat out (us): api 250, total 1100" in text
    assert "losses in all: 0" in text
    assert "CPU per single event at the highest fixed rate (us): api 400, total 1600" in text
    assert "(us): postgres 107, worker1 140, total 330" in text


def test_cpu_per_event_is_each_parts_time_over_the_count_with_the_total() -> None:
    before = {"api": 1.0, "postgres": 2.0}
    after = {"api": 1.5, "postgres": 3.0, "worker1": 0.25}  # a part that started meanwhile
    assert cpu_us_per(1000, before, after) == {
        "api": 500,
        "postgres": 1000,
        "worker1": 250,
        "total": 1750,
    }
    assert cpu_us_per(0, before, after) == {}
