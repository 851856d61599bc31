"""The answer to `Expect: 100-continue`, given before a client sends its body (and before the
middlewares run, so it is whole here): a declared body over the limit gets its 413 at once,
instead of a 100 Continue that invites the client to upload what will be refused."""

from __future__ import annotations

from aiohttp import HttpVersion11, web

from hookrelay.api.errors import error_body
from hookrelay.api.http import json_response
from hookrelay.api.state import SETTINGS

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


async def expect_handler(request: web.Request) -> web.StreamResponse | None:
    """413 for a declared length over the limit, 417 for an expectation other than
    100-continue (in the JSON error shape, quoting nothing), else 100 Continue."""
    limit = request.app[SETTINGS].max_payload_bytes
    if request.headers.get("Expect", "").lower() != "100-continue":
        refused = error_body("expectation_failed", "the only expectation served is 100-continue")
        return _closing(json_response(refused, 417))
    if request.content_length is not None and request.content_length > limit:
        too_large = error_body("payload_too_large", f"the body is larger than {limit} bytes")
        return _closing(json_response(too_large, 413))
    if request.version == HttpVersion11:
        await request.writer.write(CONTINUE)
        request.writer.output_size = 0  # as aiohttp's own: the answer has not started yet
    return None


def _closing(response: web.Response) -> web.Response:
    response.force_close()  # the body the client may still send is not read
    return response
