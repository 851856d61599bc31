"""The API behind nginx, as production runs it, with the config shipped in deploy/nginx/:
ingest in pieces, chunked and in batches; a long-poll that waits its full 30 s; an event stream
whose events pass through unbuffered and that resumes with Last-Event-ID on another process."""

from __future__ import annotations

import asyncio
import http.client
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from hookrelay.dev.cluster import free_port
from hookrelay.dev.embedded import EmbeddedPostgres
from hookrelay.storage.migrate import migrate
from tests.conftest import server_tempdir
from tests.network import wire
from tests.network.conftest import (
    ApiProcess,
    App,
    count_events,
    create_app,
    event_body,
    stored_events,
)
from tests.network.proxy import Nginx, nginx_binary

LONG_POLL_S = 30.0
# The most an event may take from its POST's 202 to the stream's client, through nginx.
STREAM_LATENCY_S = 0.1


@pytest.fixture(scope="module")
def network_database() -> Iterator[str]:
    """A Postgres server of the module's own. Streams read in commit order, so a transaction
    left open anywhere on a shared server holds them back; the 100 ms bound is about nginx,
    not about the neighbours' tests."""
    root = server_tempdir()
    server = EmbeddedPostgres(root / "postgres")
    try:
        url = server.start()
        asyncio.run(migrate(url))
        yield url
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def second_api(
    api: ApiProcess, api_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiProcess]:
    """A second API process on the same database and Redis: nginx balances over both."""
    process = ApiProcess(api_env, tmp_path_factory.mktemp("api") / "api.log")
    yield process
    api.terminate()  # both shut down at once
    process.stop()


@pytest.fixture(scope="module")
def nginx(
    api: ApiProcess, second_api: ApiProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Nginx]:
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed (make nginx installs Debian's with apt-get)")
    proxy = Nginx(
        binary, tmp_path_factory.mktemp("nginx"), free_port(), [api.port, second_api.port]
    )
    yield proxy
    proxy.stop()


def call(
    port: int, method: str, path: str, token: str, body: Any = None, **headers: str
) -> tuple[int, Any, float]:
    """One request over its own connection: status, JSON answer, and the seconds it took."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=LONG_POLL_S + 15)
    started = time.monotonic()
    try:
        fields = {"Authorization": f"Bearer {token}", **headers}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            fields["Content-Type"] = "application/json"
        connection.request(method, path, body=data, headers=fields)
        response = connection.getresponse()
        answer = json.loads(response.read())
        return response.status, answer, time.monotonic() - started
    finally:
        connection.close()


class Background:
    """A call made on a thread, so that tests that wait can wait at the same time."""

    def __init__(self, *args: Any) -> None:
        self.result: list[tuple[int, Any, float]] = []
        self.error: list[BaseException] = []
        self.thread = threading.Thread(target=self._call, args=args, daemon=True)
        self.thread.start()

    def _call(self, *args: Any) -> None:
        try:
            self.result.append(call(*args))
        except Exception as exc:  # nginx stopped first when the waiting test is not run
            self.error.append(exc)

    def wait(self, timeout_s: float) -> tuple[int, Any, float]:
        self.thread.join(timeout_s)
        if self.error:
            raise self.error[0]
        assert self.result, "the call did not return"
        return self.result[0]


@pytest.fixture(scope="module", autouse=True)
def idle_long_poll(nginx: Nginx, api: ApiProcess) -> Background:
    """A 30 s long-poll on an app that gets no events, started before the module's first test
    so that the others run while it waits; the module's last test checks it."""
    quiet = create_app(api.port)
    return Background(nginx.port, "GET", f"{quiet.events_path}?wait={LONG_POLL_S:g}", quiet.key)


class Stream:
    """An event stream read on a thread, each event's arrival time noted."""

    def __init__(self, port: int, app: App, last_event_id: str | None = None) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"Authorization": f"Bearer {app.key}"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.connection.request("GET", f"{app.events_path}/stream", headers=headers)
        self.response = self.connection.getresponse()
        assert self.response.status == 200
        self.sock = self.connection.sock
        self.arrivals: list[tuple[str, Any, float]] = []  # (id, data, monotonic time)
        self.connected = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        assert self.connected.wait(10), "the stream sent no first comment"

    def _read(self) -> None:
        frame: dict[str, str] = {}
        try:
            while line := self.response.readline():
                text = line.decode().rstrip("\r\n")
                if text == ": connected":
                    self.connected.set()
                elif text.startswith(("id:", "data:")):
                    name, _, value = text.partition(":")
                    frame[name] = value.strip()
                elif not text and "id" in frame:
                    self.arrivals.append((frame["id"], json.loads(frame["data"]), time.monotonic()))
                    frame = {}
        except (OSError, ValueError, http.client.HTTPException):  # closed by the test
            return

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[tuple[str, Any, float]]:
        deadline = time.monotonic() + timeout_s
        while len(self.arrivals) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.arrivals)

    def close(self) -> None:
        """End the stream: the reading thread sees the end at once and lets go of the reader,
        which closing the connection needs."""
        self.sock.shutdown(socket.SHUT_RDWR)
        self.thread.join(5)
        self.connection.close()


def test_event_in_two_writes_is_accepted_through_nginx(nginx: Nginx, app: App) -> None:
    body = event_body(1, 162)
    head = wire.post(app.events_path, body, app.key)[: -len(body)]
    with wire.Connection(nginx.port) as connection:
        connection.send(head, *wire.pieces(body, 2), pause_s=0.3)
        answer = connection.response()
    assert answer.status == 202, answer
    assert [e["data"] for e in stored_events(nginx.port, app)] == [json.loads(body)["data"]]


def test_batch_of_1000_in_pieces_is_accepted_through_nginx(
    nginx: Nginx, app: App, network_database: str
) -> None:
    body = json.dumps({"events": [json.loads(event_body(n, 190)) for n in range(1000)]}).encode()
    head = wire.post(f"{app.events_path}/batch", body, app.key)[: -len(body)]
    with wire.Connection(nginx.port) as connection:
        connection.send(head, *wire.pieces(body, 40), pause_s=0.02)
        answer = connection.response()
    assert answer.status == 202, answer
    assert count_events(network_database, app) == 1000


def test_chunked_event_is_accepted_through_nginx(nginx: Nginx, app: App) -> None:
    body = event_body(2, 3000)
    with wire.Connection(nginx.port) as connection:
        connection.send(
            wire.chunked_post_head(app.events_path, app.key),
            *map(wire.chunk, wire.pieces(body, 3)),
            wire.LAST_CHUNK,
            pause_s=0.05,
        )
        answer = connection.response()
    assert answer.status == 202, answer


# With an Idempotency-Key, nginx passes ingest on from a location of its own (one that may send
# it to a second API process): its errors must be JSON too.
@pytest.mark.parametrize("headers", [{}, {"Idempotency-Key": "k1"}], ids=["no key", "a key"])
def test_chunked_body_over_the_limit_is_413_json_through_nginx(
    nginx: Nginx, app: App, network_database: str, headers: dict[str, str]
) -> None:
    body = event_body(3, 300 * 1024)
    with wire.Connection(nginx.port) as connection:
        connection.send(
            wire.chunked_post_head(app.events_path, app.key, **headers),
            *map(wire.chunk, wire.pieces(body, 10)),
            wire.LAST_CHUNK,
            pause_s=0.02,
        )
        answer = connection.response()
    assert answer.status == 413, answer
    assert answer.json()["error"]["code"] == "payload_too_large"
    assert count_events(network_database, app) == 0


def test_malformed_chunked_body_is_400_json_through_nginx(
    nginx: Nginx, app: App, network_database: str
) -> None:
    with wire.Connection(nginx.port) as connection:
        connection.send(
            wire.chunked_post_head(app.events_path, app.key),
            wire.chunk(event_body(4, 162)),
            b"zz\r\nnot a chunk\r\n",
            wire.LAST_CHUNK,
            pause_s=0.05,
        )
        answer = connection.response()
    assert answer.status == 400, answer
    assert answer.json()["error"]["code"] == "bad_request"
    assert count_events(network_database, app) == 0


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n", 400),
        (b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"GET /healthz HTTP/1.1\r\n\r\n", 400),
    ],
    ids=["line too long", "header too large", "unknown transfer coding", "no host"],
)
def test_nginx_answers_its_own_errors_as_json_without_versions(
    nginx: Nginx, request_bytes: bytes, status: int
) -> None:
    with wire.Connection(nginx.port) as connection:
        connection.send(request_bytes)
        answer = connection.response()
    assert answer.status == status, answer
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["server"] == "nginx"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.json()["error"]["message"]


def test_a_stream_token_reaches_no_nginx_access_log_line(nginx: Nginx, app: App) -> None:
    tokens_path = app.events_path.removesuffix("/events") + "/stream-tokens"
    status, grant, _ = call(nginx.port, "POST", tokens_path, app.key, {})
    assert status == 201, grant
    stream = f"{app.events_path}/stream?token={grant['token']}"
    with wire.Connection(nginx.port) as connection:
        connection.send(wire.request_head("GET", stream, {}, None))
        assert connection.response_status() == 200
    deadline = time.monotonic() + 5
    while "/events/stream" not in nginx.access_log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    logged = nginx.access_log.read_text()
    assert "/events/stream" in logged
    assert grant["token"] not in logged
    assert "token=" not in logged


def test_long_poll_returns_as_soon_as_an_event_arrives_through_nginx(
    nginx: Nginx, app: App
) -> None:
    poll = Background(nginx.port, "GET", f"{app.events_path}?wait={LONG_POLL_S:g}", app.key)
    time.sleep(0.5)
    status, _, _ = call(nginx.port, "POST", app.events_path, app.key, {"type": "job.x", "data": {}})
    assert status == 202
    status, answer, took = poll.wait(5.0)
    assert status == 200, answer
    assert [e["type"] for e in answer["data"]] == ["job.x"]
    assert took < 10.0  # not the 30 s it would wait for nothing


@pytest.mark.timed
def test_stream_events_arrive_within_100_ms_of_their_202_through_nginx(
    nginx: Nginx, app: App
) -> None:
    stream = Stream(nginx.port, app)
    accepted: dict[str, float] = {}
    try:
        for n in range(10):
            status, event, _ = call(
                nginx.port, "POST", app.events_path, app.key, {"type": "job.x", "data": {"n": n}}
            )
            assert status == 202, event
            accepted[event["id"]] = time.monotonic()
            time.sleep(0.05)
        arrivals = stream.wait_for(10)
    finally:
        stream.close()
    assert [event_id for event_id, _, _ in arrivals] == list(accepted)
    delays = {event_id: at - accepted[event_id] for event_id, _, at in arrivals}
    assert max(delays.values()) <= STREAM_LATENCY_S, delays


def test_stream_resumes_with_last_event_id_through_nginx(nginx: Nginx, app: App) -> None:
    def send(n: int) -> str:
        status, event, _ = call(
            nginx.port, "POST", app.events_path, app.key, {"type": "job.x", "data": {"n": n}}
        )
        assert status == 202, event
        event_id: str = event["id"]
        return event_id

    first = Stream(nginx.port, app)
    try:
        seen = [send(n) for n in range(3)]
        assert [event_id for event_id, _, _ in first.wait_for(3)] == seen
    finally:
        first.close()
    missed = [send(n) for n in range(3, 6)]
    resumed = Stream(nginx.port, app, last_event_id=seen[-1])  # nginx picks the other process
    try:
        arrivals = resumed.wait_for(3)
        time.sleep(0.2)  # nothing more may follow
        assert [event_id for event_id, _, _ in resumed.arrivals] == missed
        assert [data["data"]["n"] for _, data, _ in arrivals] == [3, 4, 5]
    finally:
        resumed.close()


def test_long_poll_waits_its_full_30_s_through_nginx(idle_long_poll: Background) -> None:
    status, answer, took = idle_long_poll.wait(LONG_POLL_S + 15)
    assert status == 200, answer
    assert answer["data"] == []
    assert answer["next_cursor"]
    assert LONG_POLL_S <= took < LONG_POLL_S + 5
