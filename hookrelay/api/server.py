"""The API's HTTP server: aiohttp's, except for the answer to a request it cannot parse, and
for telling a handler that waits when its client has gone.

aiohttp refuses a malformed request with a text/plain 400 that quotes the refused request line
or header, so any key or token in it, and logs the same text with a traceback at ERROR. Here
such a request gets the JSON error shape with a fixed message, and one log line that names the
kind of error only.

aiohttp 3.14's C parser also drops a request body whose chunked framing breaks after the
request was handed out, without telling its reader (the handler would wait out its read
timeout); `RequestHandler.data_received` hands the reader the error instead, so such a body
gets a 400 at once.

The answer is built by `RequestHandler.handle_error`, and aiohttp makes its handlers in
`Server.__call__`, which `AppRunner._make_server` creates: both are internals of aiohttp (pinned
in constraints.txt), checked by tests/integration/test_malformed_requests.py.

A client that goes away does not cancel its handler (why: `client_gone` in
hookrelay/api/http.py); `RequestHandler.connection_lost` tells a handler that waits instead. It
reads which request is being handled from aiohttp's `_current_request`, checked by the same
test.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import Any

import structlog
from aiohttp import StreamReader, web, web_protocol
from aiohttp.http_exceptions import BadHttpMethod

from hookrelay.api.app import create_app, set_common_headers
from hookrelay.api.errors import error_body, http_code
from hookrelay.api.http import json_response
from hookrelay.api.state import CLIENT_GONE
from hookrelay.settings import Settings

log = structlog.get_logger(__name__)

# As web.run_app: how long a graceful shutdown waits for requests in flight.
SHUTDOWN_TIMEOUT_S = 60.0
# After an early answer (413, 408) to a request whose body is still arriving, the rest of it is
# read and dropped for this long, so that the client sees the answer; then the connection
# closes. aiohttp's default is 10 s.
LINGERING_S = 2.0
MALFORMED_REQUEST = "the request is not valid HTTP/1.1"


class RequestHandler(web_protocol.RequestHandler):
    """aiohttp's connection handler, answering errors without quoting the request, and
    telling a handler that waits (`client_gone`) when its client has gone."""

    _open_body: StreamReader | None = None  # the body of the last request handed out

    def data_received(self, data: bytes) -> None:
        queued = len(self._messages)
        super().data_received(data)
        for message, body in list(self._messages)[queued:]:
            if not isinstance(message, web_protocol._ErrInfo):
                self._open_body = body
            elif self._open_body is not None and not self._open_body.is_eof():
                # The parser failed inside that body, and queued its error as if it were a
                # request of its own: it is that body's error, and the connection's last.
                self._messages.remove((message, body))
                self._open_body.set_exception(
                    web.RequestPayloadError("the chunked framing of the body is broken")
                )
                self._open_body.feed_eof()  # nothing more will come: no lingering for it
                self.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        request = self._current_request  # the request being handled, if any
        super().connection_lost(exc)
        gone = None if request is None else request.get(CLIENT_GONE)
        if gone is not None and not gone.done():
            gone.set_result(None)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,  # the parser's text, which quotes the request: unused
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: too late for another answer
            raise ConnectionError("the response has started; cannot send an error instead")
        if status >= 500:
            log.error("request failed", status=status, exc_info=exc)
            body = error_body("internal_error", "an internal error occurred")
        else:
            # A client speaking TLS or another protocol to this port fails on the method: noise.
            report = log.debug if isinstance(exc, BadHttpMethod) else log.info
            report("malformed request refused", status=status, error=type(exc).__name__)
            body = error_body(http_code(status), MALFORMED_REQUEST)
        response = json_response(body, status)
        set_common_headers(response)
        response.force_close()
        return response


class Server(web.Server):
    """aiohttp's server, making our connection handlers."""

    def __call__(self) -> web_protocol.RequestHandler:
        return RequestHandler(self, loop=self._loop, **self._kwargs)


class AppRunner(web.AppRunner):
    """aiohttp's runner (startup, cleanup, graceful shutdown) with our server."""

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        return Server(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=made._loop,
            **made._kwargs,
        )


def run_api(settings: Settings, host: str, port: int, reuse_port: bool = False) -> None:
    """Serve the API until SIGINT/SIGTERM (`hookrelay api`, and so `hookrelay dev` too): the one
    place its connections are bounded in time.

    aiohttp starts one timer per connection: at connect, and again after each answer. When it
    fires while no request is being handled, the connection closes. With the read timeout as
    that timer, a client must finish a request's headers within it, and an idle kept-alive
    connection closes after it; `read_json` bounds the body by the same time.

    With `reuse_port`, other processes may listen on the same port (SO_REUSEPORT), and the
    kernel spreads new connections among them (`hookrelay api --processes N`).
    """
    serve(create_app(settings), host, port, reuse_port, **handler_options(settings))


def handler_options(settings: Settings) -> dict[str, Any]:
    """The options `hookrelay api` gives each connection's RequestHandler (see run_api)."""
    return {"keepalive_timeout": settings.request_read_timeout_s, "lingering_time": LINGERING_S}


def serve(
    app: web.Application, host: str, port: int, reuse_port: bool = False, **handler_options: Any
) -> None:
    """Serve `app` until SIGINT or SIGTERM, as web.run_app does; `handler_options` go to each
    connection's RequestHandler (aiohttp's keyword arguments)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    main = loop.create_task(_serve(app, host, port, reuse_port, handler_options))
    try:
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        if not main.done():
            main.cancel()  # its cleanup closes the server gracefully
            with suppress(asyncio.CancelledError):
                loop.run_until_complete(main)
        others = asyncio.all_tasks(loop)
        for task in others:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*others, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _serve(
    app: web.Application, host: str, port: int, reuse_port: bool, options: dict[str, Any]
) -> None:
    runner = AppRunner(
        app,
        handle_signals=True,  # SIGINT and SIGTERM raise GracefulExit
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        access_log=None,
        **options,
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, reuse_port=reuse_port or None).start()
        await asyncio.Event().wait()  # until cancelled
    finally:
        await runner.cleanup()
