"""What the acceptance tests add to hookrelay's cluster launcher (`hookrelay.dev.cluster`): their
settings, a look into Postgres, and the API calls a provider makes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from hookrelay.dev.cluster import Cluster

ADMIN_TOKEN = "acceptance-admin-token"
# JSON logs, for the tests that search them; a sweeper quick enough to matter within a test.
SETTINGS = {"log_format": "json", "sweep_interval": "250ms", "sweep_grace": "1s"}


class AcceptanceCluster(Cluster):
    """A cluster whose processes take no HOOKRELAY_* setting from the environment of the test
    run: only the acceptance settings, then the test's own (`**settings`)."""

    def __init__(self, root: Path, **settings: str) -> None:
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKRELAY_")}
        super().__init__(root, ADMIN_TOKEN, base_env, {**SETTINGS, **settings})

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        """Rows of `query`, on a connection of its own (the test looks past the API)."""
        connection = await asyncpg.connect(self.database_url)
        try:
            return list(await connection.fetch(query, *args))
        finally:
            await connection.close()


class Client:
    """The API calls a provider makes in these tests."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base
        self.key = ""
        self.app_id = ""

    async def call(self, method: str, path: str, body: Any = None, token: str = "") -> Any:
        headers = {"Authorization": f"Bearer {token or self.key}"}
        async with self.session.request(
            method, self.base + path, json=body, headers=headers
        ) as response:
            return response.status, await response.json()

    async def create_app(self) -> None:
        status, app = await self.call("POST", "/v1/apps", {"name": "faults"}, ADMIN_TOKEN)
        assert status == 201, app
        self.key, self.app_id = app["api_key"], app["id"]

    async def add_endpoint(self, url: str, **fields: Any) -> dict[str, Any]:
        status, endpoint = await self.call(
            "POST", f"/v1/apps/{self.app_id}/endpoints", {"url": url, **fields}
        )
        assert status == 201, endpoint
        result: dict[str, Any] = endpoint
        return result

    async def send(self, n: int) -> tuple[int, Any]:
        result: tuple[int, Any] = await self.call(
            "POST", f"/v1/apps/{self.app_id}/events", {"type": "image.ready", "data": {"n": n}}
        )
        return result
