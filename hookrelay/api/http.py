"""Request parsing and JSON answers shared by the handlers."""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

import orjson
from aiohttp import web
from aiohttp.http_exceptions import PayloadEncodingError

from hookrelay import durations
from hookrelay.api.errors import PayloadTooLarge, RequestTimeout, UnsupportedMediaType
from hookrelay.api.state import CLIENT_GONE, PRINCIPAL, SETTINGS
from hookrelay.errors import BadRequest
from hookrelay.ids import is_id
from hookrelay.live.cursors import open_position, seal_position
from hookrelay.models import LogPosition
from hookrelay.schemas import JOB_ID_RULE, is_event_type, is_job_id
from hookrelay.services.auth import Principal
from hookrelay.settings import Settings

Choice = TypeVar("Choice", bound=StrEnum)

DEFAULT_PAGE_SIZE = 50
# The cursors long-polls gave out before they were sealed: "<transaction>:<event id or
# nothing>" in base64. Still taken, so that clients polling across the upgrade go on; every
# answer carries a sealed one (see hookrelay.live.cursors).
LEGACY_LOG_CURSOR = re.compile(r"([0-9]{1,20}):((?:evt_[0-9a-f]{32})?)")
MAX_TYPES = 50
# A cursor is the id of the last item of a page.
CURSOR_ID = re.compile(r"[a-z]{2,4}_[0-9a-f]{32}")
# Deeper documents are refused: nothing hookrelay accepts needs them, and they cost stack and
# time in every consumer downstream.
MAX_JSON_DEPTH = 32
# The bounds of the query parameters, declared once (/openapi.json states them from here).
MAX_PAGE_SIZE = 250  # items in one page of a list (?limit=)
MAX_WAIT_S = 60  # seconds: how long a long-poll may wait for events (?wait=)


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(body, default=_default), status=status, content_type="application/json"
    )


def secret_response(body: Any, status: int = 200) -> web.Response:
    """A JSON answer that holds a secret, key or token: no browser, proxy or CDN may keep it."""
    response = json_response(body, status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    raise TypeError(type(value).__name__)


def principal(request: web.Request) -> Principal:
    return request[PRINCIPAL]


def client_gone(request: web.Request) -> asyncio.Future[None]:
    """Done when the client's connection closes. `hookrelay api` lets a handler run on after its
    client has gone (aiohttp's default), so that a write it began is finished; a handler that
    only waits for news (an event stream, a long-poll) waits on this too, and so ends at once
    instead of holding its place (a stream counts against the app's cap) until its next write
    fails. Only the API's own server (hookrelay/api/server.py) says when a client has gone."""
    gone = request.get(CLIENT_GONE)
    if gone is None:
        gone = request[CLIENT_GONE] = asyncio.get_running_loop().create_future()
        if request.transport is None or request.transport.is_closing():
            gone.set_result(None)
    return gone


async def read_json(request: web.Request) -> Any:
    """Read a whole JSON body: a declared size over the limit is refused before reading, JSON
    only, malformed is a 400."""
    settings = request.app[SETTINGS]
    limit = settings.max_payload_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes")
    if request.content_type != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    raw = await read_body(request, limit, settings.request_read_timeout_s)
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from exc
    if nesting_depth(document) > MAX_JSON_DEPTH:
        raise BadRequest(f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    return document


async def read_optional_json(request: web.Request) -> Any:
    """The JSON body, or {} when the request has none (a bare POST asks for the defaults)."""
    return await read_json(request) if request.body_exists else {}


def bearer_token(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def read_body(request: web.Request, limit: int, timeout_s: float) -> bytes:
    """The whole body, however the network cut it up (Content-Length or chunked): read to its
    end within `timeout_s`, holding at most `limit` + 1 bytes of it. One read returns only what
    has arrived so far, so a single read would parse a prefix."""
    parts: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            while part := await request.content.read(limit + 1 - size):
                size += len(part)
                if size > limit:
                    raise PayloadTooLarge(f"the body is larger than {limit} bytes")
                parts.append(part)
    except TimeoutError as exc:
        raise RequestTimeout(f"the body did not arrive within {timeout_s:g} s") from exc
    except (PayloadEncodingError, web.RequestPayloadError) as exc:  # framing or encoding
        raise BadRequest(f"the body is not well formed: {exc}") from exc
    except ConnectionResetError as exc:  # nobody is left to answer; the request is dropped
        raise BadRequest("the connection closed before the body ended") from exc
    return b"".join(parts)


def nesting_depth(document: Any) -> int:
    """How deeply objects and arrays nest in `document` (a scalar is 0), without recursion."""
    deepest = 0
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        children = value.values() if isinstance(value, dict) else value
        if isinstance(value, dict | list):
            deepest = max(deepest, depth)
            pending.extend(
                (child, depth + 1) for child in children if isinstance(child, dict | list)
            )
    return deepest


def query_time(request: web.Request, name: str) -> datetime | None:
    """An RFC 3339 time from the query string (`2026-01-02T03:04:05Z`), or None if absent
    (`since=` with nothing is not a time: 400)."""
    raw = request.query.get(name)
    return None if raw is None else parse_time(raw, name)


# Filters from the query string are held to the rules of what they filter on, so that nothing
# unbounded (or a NUL, which Postgres text cannot hold) reaches a query: a bad one is a 400.


def query_job_id(request: web.Request) -> str | None:
    """The `job_id` query parameter, or None if absent."""
    raw = request.query.get("job_id")
    return None if raw is None else job_id_param(raw, "job_id")


def job_id_param(raw: str, name: str) -> str:
    if not is_job_id(raw):
        raise BadRequest(f"{name} must be {JOB_ID_RULE}")
    return raw


def query_event_type(request: web.Request, name: str) -> str | None:
    """An event type from the query string, or None if absent."""
    raw = request.query.get(name)
    if raw is not None and not is_event_type(raw):
        raise BadRequest(f"{name} must be an event type, dotted lowercase words like job.failed")
    return raw


def query_id(request: web.Request, name: str, prefix: str) -> str | None:
    """An id (`prefix`...) from the query string, or None if absent."""
    raw = request.query.get(name)
    if raw is not None and not is_id(raw, prefix):
        raise BadRequest(f"{name} must be an id that starts with {prefix}")
    return raw


def parse_time(raw: str, name: str) -> datetime:
    try:
        return durations.parse_time(raw)
    except durations.NoTimeZone as exc:
        raise BadRequest(f"{name} must name its time zone (Z or +hh:mm)") from exc
    except ValueError as exc:
        raise BadRequest(f"{name} must be an RFC 3339 time, like 2026-01-02T03:04:05Z") from exc


def query_choice(request: web.Request, name: str, choices: type[Choice]) -> Choice | None:
    """A member of the StrEnum `choices` named in the query string, or None if absent."""
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        return choices(raw)
    except ValueError:
        raise BadRequest(f"{name} must be one of {', '.join(choices)}") from None


# Counts shown at a glance stop here: counting a million rows costs more than knowing.
COUNT_CAP = 10_000


def capped(counted: int) -> dict[str, Any]:
    """A count made up to COUNT_CAP and one more: the count, and whether there are more."""
    return {"count": min(counted, COUNT_CAP), "more": counted > COUNT_CAP}


def query_flag(request: web.Request, name: str) -> bool:
    """`true` or `false` from the query string; absent is false."""
    raw = request.query.get(name, "false")
    if raw not in ("true", "false"):
        raise BadRequest(f"{name} must be true or false")
    return raw == "true"


def page_size(request: web.Request) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return DEFAULT_PAGE_SIZE
    # isdigit() alone is true of "³", which int() refuses, and of "٣", which int() reads as 3.
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}")
    return int(raw)


def cursor(request: web.Request) -> str | None:
    """Decode the opaque `cursor` query parameter into the id it continues from."""
    raw = request.query.get("cursor")
    if not raw:
        return None
    decoded = _decode(raw)
    if not CURSOR_ID.fullmatch(decoded):
        raise BadRequest("cursor is not one this API gave out")
    return decoded


def _decode(raw: str) -> str:
    try:
        return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (binascii.Error, ValueError) as exc:  # ValueError: non-ASCII, or not UTF-8
        raise BadRequest("cursor is not one this API gave out") from exc


def log_cursor(settings: Settings, app_id: str, position: LogPosition) -> str:
    """The opaque cursor a long-poll of `app_id` answers with: pass it back as `after`."""
    return seal_position(settings.require_secret_key(), app_id, position)


def parse_log_cursor(settings: Settings, app_id: str, raw: str) -> LogPosition | str:
    """Where a cursor given out for `app_id` resumes: the position a sealed cursor holds, or
    the event id that a cursor from before cursors were sealed names. Such a cursor's
    transaction number is ignored (a client could write any number there and learn from the
    answers how far the server's transaction counter has gone), so it resumes as `after=<that
    event id>` does. Anything else is a BadRequest."""
    position = open_position(settings.all_secret_keys(), app_id, raw)
    if position is not None:
        return position
    try:
        legacy = LEGACY_LOG_CURSOR.fullmatch(_decode(raw))
    except BadRequest:
        legacy = None
    if legacy is None or not legacy[2]:
        raise BadRequest(
            "after must be an event id, or a cursor this API gave out for this app; to start "
            "again, pass the id of the last event you received"
        )
    return legacy[2]


def event_id_param(raw: str, name: str) -> str:
    if not is_id(raw, "evt_"):
        raise BadRequest(f"{name} must be an event id (evt_...)")
    return raw


def event_types_param(raw: str | None) -> frozenset[str] | None:
    """A comma-separated list of event types, or None for all."""
    if not raw:
        return None
    types = frozenset(part.strip() for part in raw.split(",") if part.strip())
    if len(types) > MAX_TYPES or not all(is_event_type(t) for t in types):
        raise BadRequest(f"types must be up to {MAX_TYPES} event types, separated by commas")
    return types or None


def seconds_param(request: web.Request, name: str, most: float) -> float:
    raw = request.query.get(name)
    if raw is None:
        return 0.0
    try:
        # ASCII only: float() also reads other scripts' digits ("٣") and "" is no number.
        value = float(raw) if raw.isascii() else -1.0
    except ValueError:
        value = -1.0
    if not 0 <= value <= most:  # also refuses nan
        raise BadRequest(f"{name} must be a number of seconds from 0 to {most:g}")
    return value


def page(items: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """A list answer: the items and the cursor of the next page (null on the last)."""
    next_cursor = None
    if len(items) == limit and items:
        next_cursor = base64.urlsafe_b64encode(items[-1]["id"].encode()).decode().rstrip("=")
    return {"data": items, "next_cursor": next_cursor}
