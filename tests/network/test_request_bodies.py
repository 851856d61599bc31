"""Request bodies as networks deliver them: in pieces with pauses, chunked, cut short. The API
reads the whole body before parsing it, and enforces the size limit while reading."""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import pytest

from tests.network import wire
from tests.network.conftest import ApiProcess, App, count_events, event_body, stored_events

LIMIT = 256 * 1024  # the default HOOKRELAY_MAX_PAYLOAD_BYTES
READ_TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def api_settings() -> dict[str, str]:
    return {"REQUEST_READ_TIMEOUT": f"{READ_TIMEOUT_S}s"}


def post_in_pieces(api: ApiProcess, app: App, body: bytes, count: int, pause_s: float) -> Any:
    head = wire.request_head(
        "POST",
        app.events_path,
        {"Authorization": f"Bearer {app.key}", "Content-Type": "application/json"},
        len(body),
    )
    with wire.Connection(api.port) as connection:
        connection.send(head, *wire.pieces(body, count), pause_s=pause_s)
        return connection.response()


def post_chunked(api: ApiProcess, app: App, *chunks: bytes, pause_s: float = 0.05) -> Any:
    with wire.Connection(api.port) as connection:
        connection.send(wire.chunked_post_head(app.events_path, app.key), *chunks, pause_s=pause_s)
        return connection.response()


def test_event_body_helper_gives_the_size_asked() -> None:
    assert len(event_body(7, 162)) == 162


def test_body_in_two_writes_300_ms_apart_is_read_whole(api: ApiProcess, app: App) -> None:
    body = event_body(1, 162)
    answer = post_in_pieces(api, app, body, count=2, pause_s=0.3)
    assert answer.status == 202, answer
    assert [e["data"] for e in stored_events(api.port, app)] == [json.loads(body)["data"]]


@pytest.mark.parametrize(
    ("size", "count"),
    [(3 * 1024, 3), (60 * 1024, 6), (200 * 1024, 10)],
    ids=["3KB", "60KB", "200KB"],
)
def test_body_in_many_pieces_is_read_whole(
    api: ApiProcess, app: App, size: int, count: int
) -> None:
    body = event_body(2, size)
    answer = post_in_pieces(api, app, body, count=count, pause_s=0.05)
    assert answer.status == 202, answer
    assert [e["data"] for e in stored_events(api.port, app)] == [json.loads(body)["data"]]


def test_chunked_body_in_pieces_is_read_whole(api: ApiProcess, app: App) -> None:
    body = event_body(3, 5000)
    answer = post_chunked(api, app, *map(wire.chunk, wire.pieces(body, 5)), wire.LAST_CHUNK)
    assert answer.status == 202, answer
    assert [e["data"] for e in stored_events(api.port, app)] == [json.loads(body)["data"]]


def test_chunked_body_over_the_limit_is_413(
    api: ApiProcess, app: App, network_database: str
) -> None:
    body = event_body(4, 300 * 1024)
    chunks = [wire.chunk(piece) for piece in wire.pieces(body, 10)]
    answer = post_chunked(api, app, *chunks, wire.LAST_CHUNK, pause_s=0.02)
    assert answer.status == 413, answer
    assert answer.json()["error"]["code"] == "payload_too_large"
    assert count_events(network_database, app) == 0


def test_declared_length_over_the_limit_is_413_before_the_body(api: ApiProcess, app: App) -> None:
    head = wire.request_head(
        "POST",
        app.events_path,
        {"Authorization": f"Bearer {app.key}", "Content-Type": "application/json"},
        LIMIT + 1,
    )
    with wire.Connection(api.port) as connection:
        connection.send(head)
        answer = connection.response()
    assert answer.status == 413, answer
    assert answer.json()["error"]["code"] == "payload_too_large"


def expect_continue_head(app: App, length: int, expect: str = "100-continue") -> bytes:
    fields = {
        "Authorization": f"Bearer {app.key}",
        "Content-Type": "application/json",
        "Expect": expect,
    }
    return wire.request_head("POST", app.events_path, fields, length)


def test_expect_continue_with_a_length_over_the_limit_is_413_without_a_100(
    api: ApiProcess, app: App
) -> None:
    """curl asks before a large upload: the answer is the 413, not an invitation to send."""
    with wire.Connection(api.port) as connection:
        connection.send(expect_continue_head(app, 100_000_000))
        answer = connection.response()
    assert answer.status == 413, answer
    assert answer.json()["error"]["code"] == "payload_too_large"


def test_expect_continue_within_the_limit_gets_a_100_then_its_answer(
    api: ApiProcess, app: App, network_database: str
) -> None:
    body = event_body(9, 162)
    with wire.Connection(api.port) as connection:
        connection.send(expect_continue_head(app, len(body)))
        assert connection.response().status == 100
        connection.send(body)
        answer = connection.response()
    assert answer.status == 202, answer
    assert count_events(network_database, app) == 1


def test_an_unknown_expectation_is_417_quoting_nothing(api: ApiProcess, app: App) -> None:
    with wire.Connection(api.port) as connection:
        connection.send(expect_continue_head(app, 10, expect=f"hrk_{app.key[-8:]}"))
        answer = connection.response()
    assert answer.status == 417, answer
    assert answer.json()["error"]["code"] == "expectation_failed"
    assert app.key[-8:].encode() not in answer.body


def test_chunked_body_of_exactly_the_limit_is_accepted(api: ApiProcess, app: App) -> None:
    body = event_body(5, LIMIT)
    answer = post_chunked(api, app, *map(wire.chunk, wire.pieces(body, 4)), wire.LAST_CHUNK)
    assert answer.status == 202, answer


@pytest.mark.parametrize(
    "broken",
    [b"zz\r\nnot a chunk\r\n", b"4\r\nHello\r\n", b"6\r\nHello\r\n"],
    ids=["not a chunk size", "chunk longer than its size", "chunk shorter than its size"],
)
def test_malformed_chunked_body_after_a_valid_first_chunk_is_400_at_once_and_stores_nothing(
    api: ApiProcess, app: App, network_database: str, broken: bytes
) -> None:
    """aiohttp's C parser drops such a body without telling its reader; the API's connection
    handler tells it, so the answer is a 400 at once, not a 408 after the read timeout."""
    first = wire.chunk(event_body(6, 162))
    started = time.monotonic()
    answer = post_chunked(api, app, first, broken, wire.LAST_CHUNK)
    assert answer.status == 400, answer
    assert answer.json()["error"]["code"] == "bad_request"
    assert time.monotonic() - started < READ_TIMEOUT_S
    assert count_events(network_database, app) == 0


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (gzip.compress(event_body(8, 162))[:-12] + b"not gzip at all", 400, "bad_request"),
        # About 10 KB on the wire, ten times the limit once decompressed.
        (gzip.compress(event_body(9, 10 * LIMIT)), 413, "payload_too_large"),
    ],
    ids=["does not decompress", "over the limit once decompressed"],
)
def test_compressed_body_is_refused_when_it_will_not_do_and_stores_nothing(
    api: ApiProcess, app: App, network_database: str, body: bytes, status: int, code: str
) -> None:
    with wire.Connection(api.port) as connection:
        connection.send(wire.post(app.events_path, body, app.key, **{"Content-Encoding": "gzip"}))
        answer = connection.response()
    assert answer.status == status, answer
    assert answer.json()["error"]["code"] == code
    assert count_events(network_database, app) == 0


def test_body_cut_short_of_its_length_stores_nothing(
    api: ApiProcess, app: App, network_database: str
) -> None:
    body = event_body(7, 162)
    head = wire.request_head(
        "POST",
        app.events_path,
        {"Authorization": f"Bearer {app.key}", "Content-Type": "application/json"},
        len(body) + 100,  # the client promises more than it sends, then stops sending
    )
    with wire.Connection(api.port) as connection:
        connection.send(head, body, pause_s=0.1)
        connection.sock.shutdown(wire.socket.SHUT_WR)
        # The client is gone: the API lets the connection go, within its read timeout at most.
        assert connection.closed_by_server(within_s=READ_TIMEOUT_S + 2.0)
    assert count_events(network_database, app) == 0


def test_batch_of_1000_events_in_pieces_is_stored_whole(
    api: ApiProcess, app: App, network_database: str
) -> None:
    events = [json.loads(event_body(n, 190)) for n in range(1000)]
    body = json.dumps({"events": events}).encode()
    head = wire.request_head(
        "POST",
        f"{app.events_path}/batch",
        {"Authorization": f"Bearer {app.key}", "Content-Type": "application/json"},
        len(body),
    )
    with wire.Connection(api.port) as connection:
        connection.send(head, *wire.pieces(body, 40), pause_s=0.02)
        answer = connection.response()
    assert answer.status == 202, answer
    assert len(answer.json()["data"]) == 1000
    assert count_events(network_database, app) == 1000
