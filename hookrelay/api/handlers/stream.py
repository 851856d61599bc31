"""Server-Sent Events: an app's events live, resumable with Last-Event-ID; and the stream
tokens that let a browser's EventSource open one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator

import structlog
from aiohttp import web

from hookrelay.api.http import (
    client_gone,
    event_id_param,
    event_types_param,
    principal,
    query_job_id,
    read_optional_json,
    secret_response,
)
from hookrelay.api.state import APP_ID, AUTH, LIVE_FEED, SETTINGS, STORAGE
from hookrelay.errors import HookrelayError, NotFound
from hookrelay.models import Event, LogFilter
from hookrelay.services.event_log import log_start

log = structlog.get_logger(__name__)

# Events read at a time; a client catching up gets them in pages of this many.
STREAM_BATCH = 100
# Bytes per write at most: what a stream holds beyond the socket's own buffer.
WRITE_BYTES = 256 * 1024
# EventSource waits this long before reconnecting.
RECONNECT_MS = 2000
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-transform",
    # nginx and its kin pass events on at once instead of collecting a buffer.
    "X-Accel-Buffering": "no",
}
HEARTBEAT = b": keep-alive\n\n"


async def issue_stream_token(request: web.Request) -> web.Response:
    body = await read_optional_json(request)
    token, grant = request.app[AUTH].issue_stream_token(request[APP_ID], body, principal(request))
    return secret_response(
        {
            "token": token,
            "app_id": grant.app_id,
            "job_id": grant.job_id,
            "expires_at": grant.expires_at,
        },
        status=201,
    )


async def stream_events(request: web.Request) -> web.StreamResponse:
    settings, feed = request.app[SETTINGS], request.app[LIVE_FEED]
    caller = principal(request)
    job_id = query_job_id(request)
    if caller.job_id is not None:  # a token for one job streams that job only
        if job_id not in (None, caller.job_id):
            raise NotFound("this stream token is for another job")
        job_id = caller.job_id
    filters = LogFilter(event_types_param(request.query.get("types")), job_id)
    resume = request.headers.get("Last-Event-ID") or request.query.get("last_event_id") or None
    if resume is not None:
        resume = event_id_param(resume, "Last-Event-ID")
    app_id = request[APP_ID]
    position = await log_start(request.app[STORAGE].events, app_id, resume, job_id)
    async with feed.follow(app_id, stream=True) as tail:
        response = web.StreamResponse(headers=SSE_HEADERS)
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        heartbeat_at = loop.time() + settings.stream_heartbeat_s
        gone = client_gone(request)
        chunks: Iterable[bytes] | None = [b"retry: %d\n: connected\n\n" % RECONNECT_MS]
        while chunks is not None and await _send(
            request, response, chunks, settings.stream_send_timeout_s
        ):
            chunks = None
            while chunks is None and not feed.closed and not gone.done():
                wait_s = max(heartbeat_at - loop.time(), 0.0)
                try:
                    read = await feed.read(tail, position, filters, STREAM_BATCH, wait_s, gone)
                except HookrelayError as exc:  # Postgres went away: the client resumes later
                    log.warning("stream ended", app_id=app_id, error=exc.message)
                    return response
                position = read.position
                if read.events:
                    chunks = encode_events(read.events)  # encoded one write at a time
                elif loop.time() >= heartbeat_at:
                    chunks = [HEARTBEAT]
            heartbeat_at = loop.time() + settings.stream_heartbeat_s
    return response


def encode_events(events: list[Event]) -> Iterator[bytes]:
    """Events in the text/event-stream format, in chunks of about WRITE_BYTES; `data` is the
    webhook body, one line of JSON."""
    parts: list[str] = []
    size = 0
    for event in events:
        # Stored bodies are compact JSON, so never hold a line break; split one anyway rather
        # than let it end the event early.
        data = event.body
        if "\n" in data or "\r" in data:
            data = "\ndata: ".join(data.splitlines())
        parts.append(f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n")
        size += len(data)
        if size >= WRITE_BYTES:
            yield "".join(parts).encode()
            parts, size = [], 0
    if parts:
        yield "".join(parts).encode()


async def _send(
    request: web.Request, response: web.StreamResponse, chunks: Iterable[bytes], timeout_s: float
) -> bool:
    """Write to the client; False when it is gone, or too slow to take what it is sent (then it
    is dropped: the server never buffers without bound for a client that does not read)."""
    try:
        for chunk in chunks:
            await asyncio.wait_for(response.write(chunk), timeout_s)
    except TimeoutError:
        log.info("stream client too slow; dropped", path=request.path)
        if request.transport is not None:
            request.transport.abort()
        return False
    except ConnectionError:
        return False
    return True
