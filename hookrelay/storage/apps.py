"""Apps and their API keys (sql/queries/apps.sql)."""

from __future__ import annotations

from hookrelay.errors import NotFound
from hookrelay.models import ApiKey, App
from hookrelay.storage.db import Database

NO_APP = "no such app"


class Apps:
    """The apps, and the keys their clients authenticate with (stored as hashes only)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self, app_id: str, name: str, uid: str | None, key_hash: bytes, key_prefix: str
    ) -> App:
        """Create an app and its first key, together."""
        async with self.db.transaction() as session:
            app = await session.one(App, "insert_app", app_id, name, uid)
            await session.execute("insert_app_key", app_id, key_hash, key_prefix, "default")
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

    async def create_key(self, app_id: str, key_hash: bytes, key_prefix: str, name: str) -> ApiKey:
        """Add a key to an app."""
        return await self.db.one(ApiKey, "insert_app_key", app_id, key_hash, key_prefix, name)

    async def list_keys(self, app_id: str, after: str | None, limit: int) -> list[ApiKey]:
        """An app's keys in id order after a cursor (their prefixes, never the keys)."""
        return await self.db.all(ApiKey, "list_app_keys", app_id, after, limit)

    async def revoke_key(self, app_id: str, key_id: str) -> ApiKey:
        """Revoke one of an app's keys (again: no change)."""
        return await self.db.one(ApiKey, "revoke_app_key", app_id, key_id, missing="no such key")

    async def id_for_key(self, key_hash: bytes) -> str | None:
        """The app an unrevoked key belongs to."""
        app_id: str | None = await self.db.value("app_id_for_key", key_hash)
        return app_id

    # Last in the class: below this method, `list` in an annotation would name it.
    async def list(self, after: str | None, limit: int) -> list[App]:
        """Apps in id order after a cursor."""
        return await self.db.all(App, "list_apps", after, limit)
