"""Stream tokens: short-lived credentials a browser can put in an EventSource URL.

EventSource cannot send an Authorization header, and an app key must never reach a browser. An
authenticated call issues a token that opens only the event stream of one app (optionally of one
job) until it expires. A token is self-contained (no table): its claims, signed with a key
derived from HOOKRELAY_SECRET_KEY.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
from dataclasses import dataclass

import orjson

from hookrelay import base64url

TOKEN_PREFIX = "hrst_"
_KEY_LABEL = b"hookrelay stream token v1"


@dataclass(frozen=True)
class StreamGrant:
    """What a valid stream token allows."""

    app_id: str
    job_id: str | None
    expires_at: int  # unix seconds
    # The app key or portal session that issued it (Principal.credential: its kind and hash);
    # None: the admin, or a token issued before tokens named their issuer. The token opens
    # nothing once that credential is revoked or has ended.
    issued_by: str | None = None


def _mac(secret_key: bytes, claims: str) -> bytes:
    # A key derived for tokens: the key encrypting secrets at rest is used for nothing else.
    signing_key = hmac.new(secret_key, _KEY_LABEL, hashlib.sha256).digest()
    return hmac.new(signing_key, claims.encode(), hashlib.sha256).digest()


def issue_token(secret_key: bytes, grant: StreamGrant) -> str:
    claims = base64url.encode(
        orjson.dumps(
            {
                "app": grant.app_id,
                "job": grant.job_id,
                "exp": grant.expires_at,
                **({"by": grant.issued_by} if grant.issued_by else {}),
            }
        )
    )
    return f"{TOKEN_PREFIX}{claims}.{base64url.encode(_mac(secret_key, claims))}"


def verify_token(secret_keys: tuple[bytes, ...], token: str, now: float) -> StreamGrant | None:
    """The grant of a token signed with one of `secret_keys` and not expired, or None."""
    claims, dot, mac_text = token.removeprefix(TOKEN_PREFIX).partition(".")
    if not token.startswith(TOKEN_PREFIX) or not dot:
        return None
    try:
        mac = base64url.decode(mac_text)  # strictly: two strings are never the same token
    except (binascii.Error, ValueError):
        return None
    if not any(hmac.compare_digest(mac, _mac(key, claims)) for key in secret_keys):
        return None
    decoded = orjson.loads(base64url.decode(claims))  # signed by us, so well formed
    if decoded["exp"] <= now:
        return None
    return StreamGrant(decoded["app"], decoded["job"], decoded["exp"], decoded.get("by"))
