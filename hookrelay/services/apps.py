"""Apps and their keys: create an app with its first key, add and revoke keys, change and
delete apps. A revoked key, and every key of a deleted app, stops working on every process."""

from __future__ import annotations

from typing import Any

import structlog

from hookrelay.errors import Forbidden
from hookrelay.ids import new_id
from hookrelay.models import ApiKey, App
from hookrelay.schemas import validate_request
from hookrelay.services.auth import KEY_PREFIX_SHOWN, Principal, hash_app_key, new_app_key
from hookrelay.services.ports import AnnounceRevocation, AppStore

log = structlog.get_logger(__name__)


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
            new_id("app_"), body["name"], body.get("uid"), hash_app_key(key), key[:KEY_PREFIX_SHOWN]
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

    async def create_app_key(self, app_id: str, body: Any) -> tuple[ApiKey, str]:
        """Add a key to an app; return it and the key itself (shown once)."""
        body = validate_request("app_key_create", body)
        key = new_app_key()
        created = await self._apps.create_key(
            app_id, hash_app_key(key), key[:KEY_PREFIX_SHOWN], body.get("name", "")
        )
        log.info("app key created", app_id=app_id, key_id=created.id)
        return created, key

    async def revoke_app_key(self, app_id: str, key_id: str) -> ApiKey:
        """Revoke a key; it stops working on every API process."""
        revoked = await self._apps.revoke_key(app_id, key_id)
        await self._revoked(app_id)
        log.info("app key revoked", app_id=app_id, key_id=key_id)
        return revoked
