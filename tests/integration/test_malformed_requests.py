"""The API's own server (hookrelay/api/server.py) over real sockets: a request aiohttp cannot
parse gets the JSON error shape and quotes nothing of itself. The server overrides internals of
aiohttp; the last test fails when those change under us."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web, web_protocol

from hookrelay.api.app import create_app
from hookrelay.api.server import MALFORMED_REQUEST, AppRunner, RequestHandler
from hookrelay.settings import Settings
from tests.conftest import ADMIN_TOKEN


@pytest.fixture
async def port(settings: Settings) -> AsyncIterator[int]:
    runner = AppRunner(create_app(settings), access_log=None, max_field_size=1024)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield runner.addresses[0][1]
    await runner.cleanup()


async def _send(port: int, request: bytes) -> tuple[bytes, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    answer = await asyncio.wait_for(reader.read(), 5)  # read() to EOF: the server closes
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, body


async def test_unparsable_request_gets_the_json_error_shape_without_its_text(port: int) -> None:
    request = f"GET /v1/apps HTTP/1.1\r\nAuthorization: Bearer {ADMIN_TOKEN}\x01\r\n\r\n"
    head, body = await _send(port, request.encode())
    assert head.startswith(b"HTTP/1.0 400 ")
    assert b"Content-Type: application/json" in head
    assert json.loads(body) == {
        "error": {"code": "bad_request", "message": MALFORMED_REQUEST, "details": None}
    }


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /healthz HTTP/1.1\r\nX-Bad: a\x01b\r\n\r\n",
        b"GET /health\x00z HTTP/1.1\r\n\r\n",
        b"GET /healthz HTTP/9.z\r\n\r\n",
    ],
    ids=["control character in a header", "NUL in the target", "bad version"],
)
async def test_the_answer_to_an_unparsable_request_tells_no_versions(
    port: int, request_bytes: bytes
) -> None:
    head, _ = await _send(port, request_bytes)
    headers = dict(
        line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:] if ": " in line
    )
    assert head.startswith(b"HTTP/1.0 400 ")
    assert headers["Server"] == "hookrelay"
    assert headers["X-Content-Type-Options"] == "nosniff"


async def test_handler_options_reach_the_connection_handler(port: int) -> None:
    # max_field_size=1024 in the fixture: a 2,000-byte header is refused, by our handler.
    head, body = await _send(port, b"GET /healthz HTTP/1.1\r\nX-Long: " + b"a" * 2000 + b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 400 ")
    assert json.loads(body)["error"]["code"] == "bad_request"
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/healthz") as response,
    ):
        assert response.status == 200


def test_aiohttp_internals_we_override_are_unchanged() -> None:
    """hookrelay.api.server relies on these: if this fails, aiohttp changed; read its new
    web_protocol.py, web_server.py and web_runner.py before changing the test."""
    assert aiohttp.__version__ == "3.14.5"
    assert list(inspect.signature(web_protocol.RequestHandler.handle_error).parameters) == [
        "self",
        "request",
        "status",
        "exc",
        "message",
    ]
    assert list(inspect.signature(web.Server.__init__).parameters) == [
        "self",
        "handler",
        "request_factory",
        "handler_cancellation",
        "loop",
        "kwargs",
    ]
    # Server.__call__ builds the handler from exactly these two attributes.
    source = inspect.getsource(web.Server.__call__)
    assert "RequestHandler(self, loop=self._loop, **self._kwargs)" in source
    assert "return self._app._make_handler(loop=loop, **self._kwargs)" in inspect.getsource(
        web.AppRunner._make_server
    )
    # A parser error in a request's body is queued as a message of its own (data_received),
    # which RequestHandler.data_received turns into that body's error.
    received = inspect.getsource(web_protocol.RequestHandler.data_received)
    assert "(_ErrInfo(status=400, exc=exc, message=exc.message), EMPTY_PAYLOAD)" in received
    assert "self._messages.append((msg, payload))" in received
    # connection_lost finds the request being handled (to tell a waiting handler) in
    # _current_request, which holds it while its handler runs.
    handling = inspect.getsource(web_protocol.RequestHandler._handle_request)
    assert (
        "self._current_request = request\n"
        "                resp = await request_handler(request)\n"
        "            finally:\n"
        "                self._current_request = None"
    ) in handling
    # The parser's errors reach the answer only through handle_error.
    protocol = inspect.getsource(web_protocol.RequestHandler)
    assert protocol.count("self.handle_error(") == 3
    assert issubclass(RequestHandler, web_protocol.RequestHandler)
