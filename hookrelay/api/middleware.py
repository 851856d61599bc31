"""A handler's error becomes the JSON error shape here, with the status and code api/errors.py
gives it; and every /v1 request is authenticated here."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from hookrelay.api.errors import answer_of, error_body, http_code
from hookrelay.api.http import bearer_token, json_response
from hookrelay.api.state import APP_ID, AUTH, PRINCIPAL, ROUTE_NEEDS
from hookrelay.errors import HookrelayError, NotFound, Throttled, Unauthorized
from hookrelay.services.access import Grant
from hookrelay.services.auth import Principal, require

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HookrelayError as exc:
        status, code = answer_of(exc)
        if status >= 500:
            log.warning("request failed", path=request.path, code=code, error=exc.message)
        response = json_response(error_body(code, exc.message, exc.details), status)
        if isinstance(exc, Throttled):
            response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = json_response(error_body(http_code(exc.status), exc.reason), exc.status)
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("unhandled error", path=request.path, method=request.method)
        return json_response(error_body("internal_error", "an internal error occurred"), 500)


# Every path parameter but a job id (which has its own rule) is an id or an app's uid: nothing
# else can name a resource, so anything else is a 404 before any query is made with it.
PATH_ID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


@web.middleware
async def path_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    for name, value in request.match_info.items():
        if name != "job_id" and not PATH_ID.fullmatch(value):
            raise NotFound(f"no such {name.removesuffix('_id')}")
    return await handler(request)


# The one route a stream token (?token=, for EventSource) may open.
STREAM_ROUTE = "event_stream"


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the bearer token (or, on the event stream, a stream token) of every /v1
    request to a principal, or answer 401; the app its path names to that app's id, once, for
    the handlers (APP_ID); then refuse with 403 a caller not granted what the route needs."""
    if request.path.startswith("/v1/"):
        principal = await _principal(request)
        request[PRINCIPAL] = principal
        ref = request.match_info.get("app_id")
        if ref is not None:
            # Before the handler reads anything: another app's resources do not exist, whatever
            # the request's body would have said (a uid naming one's own app passes).
            request[APP_ID] = await request.app[AUTH].app_id_for(principal, ref)
        # After the app: another app's resources answer 404 whatever the credential's grants.
        needs = request.app[ROUTE_NEEDS].get(request.match_info.handler)
        if needs is None:
            # No route of the table: the router's own 404 or 405 answers it, unless some
            # handler was served outside the table, which nobody but the admin may call.
            if request.match_info.http_exception is not None:
                return await handler(request)
            needs = tuple(Grant)
        require(principal, needs, "do this")
    return await handler(request)


async def _principal(request: web.Request) -> Principal:
    auth = request.app[AUTH]
    stream_token = request.query.get("token")
    if stream_token is not None and "Authorization" not in request.headers:
        if request.match_info.route.name != STREAM_ROUTE:
            raise Unauthorized("a stream token opens only GET .../events/stream")
        principal = await auth.authenticate_stream_token(stream_token)
        if principal is None:
            raise Unauthorized("the stream token is not valid or has expired")
        return principal
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("send Authorization: Bearer <token>")
    found = await auth.authenticate(token)
    if found is None:
        raise Unauthorized("the token is not valid")
    return found
