"""`hookrelay receive`: a local receiver that verifies and prints the webhooks it gets.

A delivery whose signature verifies is answered with `--status` (200 unless told otherwise: a
500 imitates a failing receiver); one that does not verify is answered 401, so hookrelay
records it as a failed attempt instead of a success.
"""

from __future__ import annotations

import hmac
import time
from http import HTTPStatus

from aiohttp import web

from hookrelay.api.errors import error_body
from hookrelay.signing.webhooks import SigningKey

# Standard Webhooks receivers refuse messages whose timestamp is further off than this.
TIMESTAMP_TOLERANCE_S = 300
REFUSED_STATUS = 401
# Statuses that may carry no body (RFC 9110 sections 15.3.5, 15.3.6, 15.4.5).
BODYLESS_STATUSES = frozenset({204, 205, 304})


def verify(key: SigningKey, headers: dict[str, str], body: bytes, now: float) -> str | None:
    """Return why a webhook does not verify with `key`, or None if it does."""
    try:
        msg_id = headers["webhook-id"]
        timestamp = int(headers["webhook-timestamp"])
        signatures = headers["webhook-signature"].split()
    except (KeyError, ValueError):
        return "missing or malformed webhook-* headers"
    if abs(now - timestamp) > TIMESTAMP_TOLERANCE_S:
        return "timestamp outside the tolerance"
    expected = key.sign(msg_id, timestamp, body)
    if any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        return None
    return "no signature matches"


def answer(status: int) -> web.Response:
    """The answer to a delivery that verifies: `status`, with a body that matches it ("ok" for
    a success, the JSON error shape otherwise)."""
    if status in BODYLESS_STATUSES:
        return web.Response(status=status)
    if 200 <= status < 300:
        return web.Response(status=status, text="ok")
    try:
        code = HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:  # a status with no registered name, e.g. 599
        code = f"status_{status}"
    told = f"hookrelay receive answers {status} as told by --status"
    return web.json_response(error_body(code, told), status=status)


def describe(method: str, path: str, webhook_id: str | None, verdict: str, body: bytes) -> str:
    """The lines printed for one request."""
    return (
        f"{method} {path} webhook-id={webhook_id or '(none)'} {verdict}\n"
        f"  {body.decode(errors='replace')}"
    )


def create_receiver(secret: str | None, status: int) -> web.Application:
    """The receiver's app. Raises ValueError at once if `secret` is not a signing secret."""
    key = SigningKey.from_secret(secret) if secret is not None else None

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        problem = None if key is None else verify(key, headers, body, time.time())
        if key is None:
            verdict = f"unverified (no --secret), answered {status}"
        elif problem is None:
            verdict = f"verified, answered {status}"
        else:
            verdict = f"NOT VERIFIED: {problem}, answered {REFUSED_STATUS}"
        print(
            describe(request.method, request.path, headers.get("webhook-id"), verdict, body),
            flush=True,
        )
        if problem is not None:
            refused = error_body("invalid_signature", f"the signature does not verify: {problem}")
            return web.json_response(refused, status=REFUSED_STATUS)
        return answer(status)

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handle)
    return app


def run_receiver(app: web.Application, host: str, port: int) -> None:
    """Serve `app` (from create_receiver) until Ctrl-C."""
    print(f"receiving webhooks at http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    web.run_app(app, host=host, port=port, print=None, access_log=None)
