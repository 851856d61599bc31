"""`hookrelay receive`: a local receiver that verifies and prints the webhooks it gets."""

from __future__ import annotations

import hmac
import time

from aiohttp import web

from hookrelay.signing import SigningKey

# Standard Webhooks receivers refuse messages whose timestamp is further off than this.
TIMESTAMP_TOLERANCE_S = 300


def verify(secret: str, headers: dict[str, str], body: bytes, now: float) -> str | None:
    """Return why a webhook does not verify with `secret`, or None if it does."""
    try:
        msg_id = headers["webhook-id"]
        timestamp = int(headers["webhook-timestamp"])
        signatures = headers["webhook-signature"].split()
    except (KeyError, ValueError):
        return "missing or malformed webhook-* headers"
    if abs(now - timestamp) > TIMESTAMP_TOLERANCE_S:
        return "timestamp outside the tolerance"
    expected = SigningKey.from_secret(secret).sign(msg_id, timestamp, body)
    if any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        return None
    return "no signature matches"


def create_receiver(secret: str | None, status: int = 200) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        if secret is None:
            verdict = "unverified (no --secret)"
        else:
            problem = verify(secret, headers, body, time.time())
            verdict = "verified" if problem is None else f"NOT VERIFIED: {problem}"
        print(
            f"{request.method} {request.path} webhook-id={headers.get('webhook-id')} {verdict}\n"
            f"  {body.decode(errors='replace')}",
            flush=True,
        )
        return web.Response(status=status, text="ok")

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handle)
    return app


def run_receiver(host: str, port: int, secret: str | None, status: int) -> None:
    print(f"receiving webhooks at http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    web.run_app(create_receiver(secret, status), host=host, port=port, print=None, access_log=None)
