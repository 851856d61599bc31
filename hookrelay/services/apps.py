"""Apps and their credentials: create an app with its first key, add and revoke scoped keys,
open and end portal sessions, change and delete apps. A revoked key, an ended session, and every
credential of a deleted app, stop working on every process. A credential hands on no more than
it holds: a key or session made by an app key has no grant that key lacks."""

from __future__ import annotations

from typing import Any

import structlog

from hookrelay.errors import Forbidden
from hookrelay.ids import new_id
from hookrelay.models import ApiKey, App, PortalSession
from hookrelay.schemas import validate_request
from hookrelay.services.access import (
    ALL_SCOPES,
    CAPABILITIES,
    Grant,
    grants_of_capabilities,
    grants_of_scopes,
    in_order,
    with_view,
)
from hookrelay.services.auth import (
    KEY_PREFIX_SHOWN,
    Principal,
    hash_token,
    new_app_key,
    new_portal_token,
    require,
)
from hookrelay.services.ports import AnnounceRevocation, AppStore

log = structlog.get_logger(__name__)

PORTAL_SESSION_DEFAULT_S = 3600


class Apps:
    """The operations on apps and keys that do more than one read or write."""

    def __init__(self, apps: AppStore, revoked: AnnounceRevocation) -> None:
        self._apps = apps
        # Auth.revoked: forgets the app's cached keys here and tells the other processes.
        self._revoked = revoked

    async def create_app(self, principal: Principal, body: Any) -> tuple[App, str]:
        """Create an app; return it and its first key (shown once)."""
        if not principal.is_admin:
            raise Forbidden("only the admin token may create apps")
        body = validate_request("app_create", body)
        key = new_app_key()
        app = await self._apps.create(
            new_id("app_"),
            body["name"],
            body.get("uid"),
            hash_token(key),
            key[:KEY_PREFIX_SHOWN],
            list(ALL_SCOPES),
        )
        log.info("app created", app_id=app.id)
        return app, key

    async def list_apps(self, principal: Principal, after: str | None, limit: int) -> list[App]:
        """Every app for the admin; for an app key, its own app alone."""
        if principal.app_id is not None:
            app = await self._apps.get(principal.app_id)
            return [app] if after is None or app.id > after else []
        return await self._apps.list(after, limit)

    async def update_app(self, app_id: str, body: Any) -> App:
        """Rename an app or change its uid; what the body leaves out stays as it was."""
        body = validate_request("app_update", body)
        app = await self._apps.get(app_id)
        return await self._apps.update(app.id, body.get("name", app.name), body.get("uid", app.uid))

    async def delete_app(self, app_id: str) -> None:
        """Delete an app with everything it owns; its keys stop working everywhere."""
        await self._apps.delete(app_id)
        await self._revoked(app_id)
        log.info("app deleted", app_id=app_id)

    async def create_app_key(
        self, principal: Principal, app_id: str, body: Any
    ) -> tuple[ApiKey, str]:
        """Add a key with the scopes asked (all three unless said) to an app; return it and
        the key itself (shown once)."""
        body = validate_request("app_key_create", body)
        scopes = in_order(body.get("scopes", ALL_SCOPES))
        _hand_on(principal, grants_of_scopes(scopes), "make a key with these scopes")
        key = new_app_key()
        created = await self._apps.create_key(
            app_id, hash_token(key), key[:KEY_PREFIX_SHOWN], body.get("name", ""), scopes
        )
        log.info("app key created", app_id=app_id, key_id=created.id, scopes=scopes)
        return created, key

    async def revoke_app_key(self, principal: Principal, app_id: str, key_id: str) -> ApiKey:
        """Revoke a key holding no more than the caller does; it stops working on every API
        process."""
        key = await self._apps.get_key(app_id, key_id)
        _hand_on(principal, grants_of_scopes(key.scopes), "revoke a key with these scopes")
        revoked = await self._apps.revoke_key(app_id, key_id)
        await self._revoked(app_id)
        log.info("app key revoked", app_id=app_id, key_id=key_id)
        return revoked

    async def open_portal_session(
        self, principal: Principal, app_id: str, body: Any
    ) -> tuple[PortalSession, str]:
        """Open a console session on one app with the capabilities asked (all of them unless
        said; `view` always); return it and its token (shown once)."""
        body = validate_request("portal_session_create", body)
        capabilities = with_view(body.get("capabilities", CAPABILITIES))
        _hand_on(principal, grants_of_capabilities(capabilities), "open such a session")
        token = new_portal_token()
        session = await self._apps.open_portal_session(
            app_id,
            hash_token(token),
            capabilities,
            body.get("expires_in", PORTAL_SESSION_DEFAULT_S),
        )
        log.info(
            "portal session opened",
            app_id=app_id,
            session_id=session.id,
            capabilities=capabilities,
        )
        return session, token

    async def end_portal_sessions(self, app_id: str) -> int:
        """End every portal session of an app, on every API process; return how many were
        still open."""
        ended = await self._apps.end_portal_sessions(app_id)
        await self._revoked(app_id)
        log.info("portal sessions ended", app_id=app_id, ended=ended)
        return ended


def _hand_on(principal: Principal, grants: frozenset[Grant], doing: str) -> None:
    """Refuse a credential that would hold (or take away) what the caller does not."""
    require(principal, sorted(grants), doing)
