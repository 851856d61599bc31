"""Who is calling, what they may do, and which app a request may name.

A bearer token is the admin token (compared in constant time), an app key or a portal session
(each looked up by its hash, through the process's KeyCache), or, on the event stream only, a
stream token (signed, checked against no table). A revocation forgets the app's cached
credentials here at once and is announced to every other API process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

from hookrelay import base64url
from hookrelay.errors import Forbidden, NotFound
from hookrelay.keycache import KeyCache
from hookrelay.live.tokens import StreamGrant, issue_token, verify_token
from hookrelay.models import Credential
from hookrelay.schemas import validate_request
from hookrelay.services.access import (
    ALL_GRANTS,
    Grant,
    grants_of_capabilities,
    grants_of_scopes,
    missing,
    what_gives,
)
from hookrelay.services.ports import AnnounceRevocation, KeyStore
from hookrelay.settings import Settings

APP_KEY_PREFIX = "hrk_"
PORTAL_TOKEN_PREFIX = "hrps_"
TOKEN_BYTES = 32
KEY_PREFIX_SHOWN = 12  # characters of a key kept in clear, to tell keys apart in listings

STREAM_GRANTS = frozenset({Grant.READ_EVENTS})
# How a stream token names the credential that issued it: `key.` or `session.`, then its
# token's hash in base64url. Not the credential's own prefix: a reference is no key, and
# should not look like one to a secret scanner.
ISSUER_KINDS = {APP_KEY_PREFIX: "key", PORTAL_TOKEN_PREFIX: "session"}
PREFIX_OF_KIND = {kind: prefix for prefix, kind in ISSUER_KINDS.items()}


class CredentialKind(StrEnum):
    """What a caller showed."""

    ADMIN = "admin"
    APP_KEY = "app_key"
    PORTAL_SESSION = "portal_session"
    STREAM_TOKEN = "stream_token"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the admin, one app's key or portal session, or a stream token (which the
    auth middleware lets open only the event stream of its app; of one job, if it names one);
    and what they may do there."""

    app_id: str | None  # None for the admin
    grants: frozenset[Grant]
    job_id: str | None = None  # a stream token's job
    # A stream token is checked against no table, so it outlives the app it was issued for:
    # that app is looked up on every use.
    stream_token: bool = False
    portal_session: bool = False
    expires_at: datetime | None = None  # a portal session's end
    # An app key's or portal session's token prefix and hash: what a stream token it issues
    # names (issuer_ref), so that the token ends with it. Where it came from, not what it may
    # do: left out of comparisons.
    credential: tuple[str, bytes] | None = field(default=None, compare=False)

    @property
    def is_admin(self) -> bool:
        return self.app_id is None

    @property
    def issuer_ref(self) -> str | None:
        """The credential as a stream token it issues names it (None: the admin)."""
        if self.credential is None:
            return None
        prefix, token_hash = self.credential
        return f"{ISSUER_KINDS[prefix]}.{base64url.encode(token_hash)}"

    @property
    def kind(self) -> CredentialKind:
        if self.is_admin:
            return CredentialKind.ADMIN
        if self.stream_token:
            return CredentialKind.STREAM_TOKEN
        return CredentialKind.PORTAL_SESSION if self.portal_session else CredentialKind.APP_KEY


ADMIN = Principal(None, ALL_GRANTS)


def require(principal: Principal, needs: Iterable[Grant], doing: str) -> None:
    """Refuse (403) a caller not granted all of `needs`, naming what it lacks in its own
    credential's words: the scope of a key, the capability of a portal session."""
    lacking = missing(needs, principal.grants)
    if lacking:
        raise Forbidden(
            f"this credential may not {doing}: it lacks "
            + what_gives(lacking, principal.portal_session),
            details={"missing": list(lacking)},
        )


def hash_token(key: str) -> bytes:
    """App keys and portal tokens are 32 random bytes, so one SHA-256 is a safe way to store
    them."""
    return hashlib.sha256(key.encode()).digest()


def _new_token(prefix: str) -> str:
    return prefix + base64.urlsafe_b64encode(os.urandom(TOKEN_BYTES)).decode().rstrip("=")


def new_app_key() -> str:
    """A new app key: the prefix, then 32 random bytes in URL-safe base64."""
    return _new_token(APP_KEY_PREFIX)


def new_portal_token() -> str:
    """A new portal session's token: its prefix, then 32 random bytes in URL-safe base64."""
    return _new_token(PORTAL_TOKEN_PREFIX)


@lru_cache(maxsize=256)
def _key_grants(scopes: tuple[str, ...]) -> frozenset[Grant]:
    return grants_of_scopes(scopes)


@lru_cache(maxsize=256)
def _session_grants(capabilities: tuple[str, ...]) -> frozenset[Grant]:
    return grants_of_capabilities(capabilities)


class Auth:
    """Authenticates tokens, issues stream tokens, and resolves the app a request names."""

    def __init__(
        self,
        settings: Settings,
        apps: KeyStore,
        announce_revocation: AnnounceRevocation,
        keys: KeyCache | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._apps = apps
        self._announce_revocation = announce_revocation
        # One query per key per few seconds, not one per request; revocations, announced to
        # every API process, empty it (see api/app.py).
        self.keys = keys if keys is not None else KeyCache()
        self._clock = clock
        self._monotonic = monotonic

    async def authenticate(self, token: str) -> Principal | None:
        """Return the principal a bearer token stands for, or None."""
        admin_token = self._settings.admin_token
        if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
            return ADMIN
        for prefix in (APP_KEY_PREFIX, PORTAL_TOKEN_PREFIX):
            if token.startswith(prefix):
                return await self._stored(prefix, hash_token(token))
        return None

    async def _stored(self, prefix: str, token_hash: bytes) -> Principal | None:
        """The principal of an app key or portal session (by its prefix and hash), or None if
        there is none, or it was revoked or has ended."""
        ref = (prefix, token_hash)
        if prefix == APP_KEY_PREFIX:
            key = await self._credential(token_hash, self._apps.credential_of_key)
            if key is None:
                return None
            return Principal(key.app_id, _key_grants(tuple(key.names)), credential=ref)
        session = await self._credential(token_hash, self._apps.credential_of_portal_session)
        # A cached session may have ended since it was looked up.
        if session is None or session.expires_at is None:
            return None
        if session.expires_at.timestamp() <= self._clock():
            return None
        return Principal(
            session.app_id,
            _session_grants(tuple(session.names)),
            portal_session=True,
            expires_at=session.expires_at,
            credential=ref,
        )

    async def _credential(
        self, token_hash: bytes, look_up: Callable[[bytes], Awaitable[Credential | None]]
    ) -> Credential | None:
        """What a key or session (by its token's hash) opens, through the cache."""
        cached = self.keys.get(token_hash, self._monotonic())
        if cached is not None:
            return cached.credential
        generation = self.keys.generation
        credential = await look_up(token_hash)
        self.keys.put(token_hash, credential, self._monotonic(), generation)
        return credential

    async def authenticate_stream_token(self, token: str) -> Principal | None:
        """Return the principal a stream token stands for, or None if it is not valid: badly
        signed, expired, or issued by an app key or portal session that has since been revoked
        or ended (looked up through the cache, as a bearer token is)."""
        grant = verify_token(self._settings.all_secret_keys(), token, self._clock())
        if grant is None:
            return None
        if grant.issued_by is not None:
            kind, _, token_hash = grant.issued_by.partition(".")
            prefix = PREFIX_OF_KIND.get(kind)
            if prefix is None:
                return None
            issuer = await self._stored(prefix, base64url.decode(token_hash))
            if issuer is None or issuer.app_id != grant.app_id:
                return None
        return Principal(grant.app_id, STREAM_GRANTS, grant.job_id, stream_token=True)

    def issue_stream_token(
        self, app_id: str, body: Any, issuer: Principal
    ) -> tuple[str, StreamGrant]:
        """A token that opens the app's event stream (of one job, if the body names one) from
        a browser, where EventSource cannot send an Authorization header. It names the key or
        session that issued it, and ends no later than that session."""
        body = validate_request("stream_token_create", body)
        expires_at = self._clock() + body.get("expires_in", self._settings.stream_token_ttl_s)
        if issuer.expires_at is not None:
            expires_at = min(expires_at, issuer.expires_at.timestamp())
        grant = StreamGrant(app_id, body.get("job_id"), int(expires_at), issuer.issuer_ref)
        return issue_token(self._settings.require_secret_key(), grant), grant

    async def app_id_for(self, principal: Principal, ref: str) -> str:
        """The id of the app `ref` (an id or a uid) names, if the caller may see it; another
        app's resources do not exist (NotFound). No query when an app key names its own app
        by id."""
        if principal.app_id == ref and not principal.stream_token:
            return ref
        app = await self._apps.get(ref)
        if not principal.is_admin and app.id != principal.app_id:
            raise NotFound("no such app")
        return app.id

    async def revoked(self, app_id: str) -> None:
        """After a revocation commits (a key, the app's portal sessions, the app): this process
        forgets the app's credentials at once, and every other API process when the notice
        reaches it (KeyCache's TTL if it never does)."""
        self.keys.forget_app(app_id)
        await self._announce_revocation(app_id)
