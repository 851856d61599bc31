"""What the worker checks on stored endpoint data before it sends: rows saved before today's
rules may hold a host or headers those rules refuse."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from hookrelay.delivery.send import _literal_problem, sendable_headers


@pytest.mark.parametrize(
    "url",
    [
        "http://[::ffff:127.1]:9/hook",
        "http://[::ffff:0177.0.0.1]:9/hook",
        "http://[::ffff:127.0.0.01]:9/hook",
    ],
)
def test_a_stored_malformed_ipv6_literal_is_refused_before_connecting(url: str) -> None:
    """aiohttp connects to any host with a colon as a literal, without the guarded resolver."""
    problem = _literal_problem(url, ())
    assert problem is not None
    assert "is not a valid IPv6 address" in problem


def test_sendable_headers_are_the_stored_ones_when_none_is_refused() -> None:
    stored = {"Authorization": "Bearer t0ken", "X-Tenant": "acme"}
    assert sendable_headers("ep_fine", stored) is stored
    assert sendable_headers("ep_fine", {}) == {}


def test_stored_refused_headers_are_dropped_and_told_once_per_endpoint_without_values() -> None:
    stored = {"Expect": "100-continue", "X-Tenant": "acme", "cookie": "session=s3cret"}
    with capture_logs() as logs:
        first = sendable_headers("ep_old", stored)
        second = sendable_headers("ep_old", stored)
        other = sendable_headers("ep_other", stored)
    assert first == second == other == {"X-Tenant": "acme"}
    assert stored == {"Expect": "100-continue", "X-Tenant": "acme", "cookie": "session=s3cret"}
    assert [(entry["log_level"], entry["endpoint_id"]) for entry in logs] == [
        ("warning", "ep_old"),
        ("warning", "ep_other"),
    ]
    assert logs[0]["headers"] == ["Expect", "cookie"]
    assert "s3cret" not in repr(logs) and "100-continue" not in repr(logs)
