"""Apps and their API keys (sql/queries/apps.sql)."""

from __future__ import annotations

from typing import Any

from hookrelay.errors import NotFound
from hookrelay.models import ApiKey, App, Credential, PortalSession
from hookrelay.storage.db import Database, build

NO_APP = "no such app"
NO_KEY = "no such key"


class Apps:
    """The apps, and the keys their clients authenticate with (stored as hashes only)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        app_id: str,
        name: str,
        uid: str | None,
        key_hash: bytes,
        key_prefix: str,
        scopes: list[str],
    ) -> App:
        """Create an app and its first key, together."""
        async with self.db.transaction() as session:
            app = await session.one(App, "insert_app", app_id, name, uid)
            await session.execute("insert_app_key", app_id, key_hash, key_prefix, "default", scopes)
        return app

    async def get(self, ref: str) -> App:
        """One app by id or uid."""
        return await self.db.one(App, "get_app", ref, missing=NO_APP)

    async def update(self, app_id: str, name: str, uid: str | None) -> App:
        """Rename an app or change its uid."""
        return await self.db.one(App, "update_app", app_id, name, uid, missing=NO_APP)

    async def delete(self, app_id: str) -> None:
        """Delete an app and everything it owns."""
        if await self.db.value("delete_app", app_id) is None:
            raise NotFound(NO_APP)

    async def create_key(
        self, app_id: str, key_hash: bytes, key_prefix: str, name: str, scopes: list[str]
    ) -> ApiKey:
        """Add a key with these scopes to an app."""
        return await self.db.one(
            ApiKey, "insert_app_key", app_id, key_hash, key_prefix, name, scopes
        )

    async def get_key(self, app_id: str, key_id: str) -> ApiKey:
        """One of an app's keys."""
        return await self.db.one(ApiKey, "get_app_key", app_id, key_id, missing=NO_KEY)

    async def list_keys(self, app_id: str, after: str | None, limit: int) -> list[ApiKey]:
        """An app's keys in id order after a cursor (their prefixes, never the keys)."""
        return await self.db.all(ApiKey, "list_app_keys", app_id, after, limit)

    async def revoke_key(self, app_id: str, key_id: str) -> ApiKey:
        """Revoke one of an app's keys (again: no change)."""
        return await self.db.one(ApiKey, "revoke_app_key", app_id, key_id, missing=NO_KEY)

    async def summary(self, app_id: str, cap: int) -> dict[str, Any]:
        """An app's endpoints by status, those failing, and its dead deliveries still lost
        (counted up to `cap`, and one more to tell that there are more)."""
        record = await self.db.row("app_summary", app_id, cap + 1)
        assert record is not None
        return dict(record)

    async def credential_of_key(self, key_hash: bytes) -> Credential | None:
        """The app an unrevoked key belongs to, with the key's scopes."""
        return await self._credential("credential_of_key", key_hash)

    async def open_portal_session(
        self, app_id: str, token_hash: bytes, capabilities: list[str], lifetime_s: int
    ) -> PortalSession:
        """Open a portal session on an app for `lifetime_s` seconds."""
        return await self.db.one(
            PortalSession,
            "insert_portal_session",
            app_id,
            token_hash,
            capabilities,
            float(lifetime_s),
            missing=NO_APP,
        )

    async def credential_of_portal_session(self, token_hash: bytes) -> Credential | None:
        """The app a portal session that has not expired opens, with its capabilities."""
        return await self._credential("credential_of_portal_session", token_hash)

    async def _credential(self, query: str, token_hash: bytes) -> Credential | None:
        record = await self.db.row(query, token_hash)
        return None if record is None else build(Credential, record)

    async def end_portal_sessions(self, app_id: str) -> int:
        """End every portal session of an app; return how many had not expired."""
        ended: int = await self.db.value("end_portal_sessions", app_id)
        return ended

    # Last in the class: below this method, `list` in an annotation would name it.
    async def list(self, after: str | None, limit: int) -> list[App]:
        """Apps in id order after a cursor."""
        return await self.db.all(App, "list_apps", after, limit)
