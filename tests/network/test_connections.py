"""Connections as clients really use them: kept alive, pipelined, slow, stalled. A slow client
is cut off after the read timeout and leaves nothing behind in the API process."""

from __future__ import annotations

import json
import select
import time

import psutil
import pytest

from tests.network import wire
from tests.network.conftest import ApiProcess, App, stored_events

READ_TIMEOUT_S = 1.0
# The time after an early answer in which the rest of a body is read and dropped
# (hookrelay.api.server.LINGERING_S), and room for a busy machine.
LINGERING_S = 2.0
SLACK_S = 2.0


@pytest.fixture(scope="module")
def api_settings() -> dict[str, str]:
    return {"REQUEST_READ_TIMEOUT": f"{READ_TIMEOUT_S:g}s"}


def event(n: int) -> bytes:
    return json.dumps({"type": "image.ready", "data": {"n": n}}).encode()


def trickle(connection: wire.Connection, data: bytes, every_s: float, for_s: float) -> float:
    """Send `data` a byte at a time until the server answers or closes; return the seconds
    that took (or `for_s`, if it did neither)."""
    started = time.monotonic()
    for byte in data:
        if time.monotonic() - started > for_s:
            break
        readable, _, _ = select.select([connection.sock], [], [], every_s)
        if readable:
            break
        try:
            connection.sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            break
    return time.monotonic() - started


def established(api: ApiProcess) -> int:
    """Connections the API process holds open on its port."""
    return sum(
        1
        for c in psutil.Process(api.pid).net_connections("tcp")
        if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == api.port
    )


def test_keep_alive_serves_several_requests_on_one_socket(api: ApiProcess, app: App) -> None:
    with wire.Connection(api.port) as connection:
        for n in range(5):
            body = event(n)
            head = wire.post(app.events_path, body, app.key)[: -len(body)]
            connection.send(head, *wire.pieces(body, 2), pause_s=0.05)
            answer = connection.response()
            assert answer.status == 202, answer
            assert answer.headers.get("connection", "").lower() != "close"
    assert sorted(e["data"]["n"] for e in stored_events(api.port, app)) == [0, 1, 2, 3, 4]  # type: ignore[index]


def test_pipelined_requests_are_answered_in_order(api: ApiProcess, app: App) -> None:
    requests = (
        wire.post(app.events_path, event(1), app.key)
        + wire.post(app.events_path, event(2), app.key)
        + wire.get(app.events_path, app.key)
    )
    with wire.Connection(api.port) as connection:
        connection.send(requests)
        first, second, listing = (connection.response() for _ in range(3))
    assert (first.status, second.status, listing.status) == (202, 202, 200)
    assert first.json()["data"] == {"n": 1}
    assert second.json()["data"] == {"n": 2}
    assert [e["data"]["n"] for e in listing.json()["data"]] == [2, 1]


def test_pipelined_request_behind_a_body_in_pieces_is_read_apart(api: ApiProcess, app: App) -> None:
    body = event(1)
    whole = wire.post(app.events_path, body, app.key)
    head, half = whole[: -len(body)], len(body) // 2
    with wire.Connection(api.port) as connection:
        connection.send(
            head + body[:half],
            body[half:] + wire.post(app.events_path, event(2), app.key),
            pause_s=0.3,
        )
        first, second = connection.response(), connection.response()
    assert (first.status, second.status) == (202, 202), (first, second)
    assert (first.json()["data"], second.json()["data"]) == ({"n": 1}, {"n": 2})


def test_idle_keep_alive_connection_is_closed_after_the_read_timeout(
    api: ApiProcess, app: App
) -> None:
    with wire.Connection(api.port) as connection:
        connection.send(wire.get(app.events_path, app.key))
        assert connection.response().status == 200
        started = time.monotonic()
        assert connection.closed_by_server(within_s=READ_TIMEOUT_S + SLACK_S)
        assert time.monotonic() - started >= READ_TIMEOUT_S * 0.9


def test_trickled_headers_are_cut_off_after_the_read_timeout(api: ApiProcess, app: App) -> None:
    head = wire.post(app.events_path, event(1), app.key) * 4  # more than it will get to send
    with wire.Connection(api.port) as connection:
        took = trickle(connection, head, every_s=0.05, for_s=READ_TIMEOUT_S + SLACK_S + 1)
        assert connection.closed_by_server(within_s=0.5)
    assert READ_TIMEOUT_S * 0.9 <= took <= READ_TIMEOUT_S + SLACK_S


def test_trickled_body_is_answered_408_and_stores_nothing(api: ApiProcess, app: App) -> None:
    body = event(1) + b" " * 200
    whole = wire.post(app.events_path, body, app.key)
    with wire.Connection(api.port) as connection:
        connection.send(whole[: -len(body)])
        took = trickle(connection, body, every_s=0.05, for_s=READ_TIMEOUT_S + SLACK_S + 1)
        answer = connection.response()
        assert connection.closed_by_server(within_s=LINGERING_S + SLACK_S)
    assert answer.status == 408, answer
    assert answer.json()["error"]["code"] == "request_timeout"
    assert READ_TIMEOUT_S * 0.9 <= took <= READ_TIMEOUT_S + SLACK_S
    assert stored_events(api.port, app) == []


def test_slow_clients_hold_no_slot_and_are_all_let_go(api: ApiProcess, app: App) -> None:
    before = established(api)
    partial = wire.post(app.events_path, event(1), app.key)[:60]
    slow = [wire.Connection(api.port) for _ in range(100)]
    try:
        for connection in slow:
            connection.send(partial)
        started = time.monotonic()
        with wire.Connection(api.port) as connection:
            connection.send(wire.post(app.events_path, event(2), app.key))
            assert connection.response().status == 202
        # Answered long before the slow clients are cut off: it did not wait for a slot.
        assert time.monotonic() - started < READ_TIMEOUT_S * 0.8
        assert all(c.closed_by_server(within_s=READ_TIMEOUT_S + SLACK_S) for c in slow)
    finally:
        for connection in slow:
            connection.close()
    assert established(api) <= before


def test_slow_clients_leave_no_memory_behind(api: ApiProcess, app: App) -> None:
    """Rounds of 200 clients that each send 8 KB of a header and stall: once two rounds have
    warmed the allocator up (about 1 MB), four more rounds leave the API's resident memory
    within 2.5 MB of where it was (the allocator and the API's own work move it by about 1.5 MB
    on a busy machine). A leak of what one client sent would add 1.6 MB a round, 6.4 MB in
    all."""
    process = psutil.Process(api.pid)
    header = wire.get(app.events_path, app.key)[:-2] + b"X-Padding: " + b"p" * 8000

    def round_of_slow_clients() -> int:
        slow = [wire.Connection(api.port) for _ in range(200)]
        try:
            for connection in slow:
                connection.send(header)
            # How soon they are cut off is another test's; here they only must be, in the end.
            assert all(c.closed_by_server(within_s=READ_TIMEOUT_S + 5.0) for c in slow)
        finally:
            for connection in slow:
                connection.close()
        return int(process.memory_info().rss)

    warm = max(round_of_slow_clients() for _ in range(2))
    rounds = [round_of_slow_clients() for _ in range(4)]
    assert rounds[-1] - warm < 2.5 * 1024 * 1024, (warm, rounds)
