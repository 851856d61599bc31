"""Endpoints: their settings, secrets and health (sql/queries/endpoints.sql)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from hookrelay.errors import NotFound
from hookrelay.ids import id_bound_at
from hookrelay.models import Endpoint
from hookrelay.statuses import EndpointStatus
from hookrelay.storage.db import Database

NO_ENDPOINT = "no such endpoint"


class Endpoints:
    """An app's endpoints; an endpoint's health is kept by recording attempts (deliveries)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def stats(
        self, endpoint_id: str, now: datetime, retry_span_s: float, cap: int, attempts_cap: int
    ) -> dict[str, Any]:
        """An endpoint's attempts in the last hour and day and how many succeeded (counted up
        to `attempts_cap`), its oldest delivery still waiting, and how many wait and how many
        are lost (up to `cap`); each cap and one more, to tell that there are more.
        `retry_span_s` is the retry schedule's length: a delivery attempted in the last day
        was made at most twice that long before the day began (jitter and Retry-After stretch
        the waits, up to twice); one held longer, its endpoint paused, is not counted."""
        day_ago = now - timedelta(days=1)
        record = await self.db.row(
            "endpoint_stats",
            endpoint_id,
            id_bound_at("att_", now - timedelta(hours=1)),
            id_bound_at("att_", day_ago),
            id_bound_at("dlv_", day_ago - timedelta(seconds=2 * retry_span_s)),
            cap + 1,
            attempts_cap + 1,
        )
        assert record is not None
        return dict(record)

    async def create(self, endpoint: Endpoint) -> Endpoint:
        """Register an endpoint."""
        return await self.db.one(
            Endpoint,
            "insert_endpoint",
            endpoint.id,
            endpoint.app_id,
            endpoint.url,
            endpoint.description,
            endpoint.event_types,
            endpoint.signing,
            endpoint.secret_ciphertext,
            endpoint.secret_key_id,
            endpoint.headers,
            endpoint.rate_limit_per_s,
            endpoint.public_key,
        )

    async def get(self, app_id: str, endpoint_id: str) -> Endpoint:
        """One endpoint of an app."""
        return await self.db.one(Endpoint, "get_endpoint", app_id, endpoint_id, missing=NO_ENDPOINT)

    async def update(
        self, app_id: str, endpoint_id: str, change: Callable[[Endpoint], Endpoint]
    ) -> tuple[Endpoint, list[tuple[str, int]]]:
        """Apply `change` to the endpoint under a row lock; return it and the deliveries it
        released from hold (id, attempts made) when it became active."""
        async with self.db.transaction() as session:
            before = await session.one(
                Endpoint, "lock_endpoint", app_id, endpoint_id, missing=NO_ENDPOINT
            )
            after = change(before)
            updated = await session.one(
                Endpoint,
                "update_endpoint",
                app_id,
                endpoint_id,
                after.url,
                after.description,
                after.event_types,
                after.status,
                after.disabled_reason,
                after.headers,
                after.rate_limit_per_s,
            )
            released: list[tuple[str, int]] = []
            if after.status == EndpointStatus.ACTIVE and before.status != EndpointStatus.ACTIVE:
                rows = await session.rows("release_held_deliveries", endpoint_id)
                released = [(r["id"], r["attempt_count"]) for r in rows]
        return updated, released

    async def rotate_secret(
        self,
        app_id: str,
        endpoint_id: str,
        ciphertext: bytes,
        key_id: str,
        public_key: str | None,
        grace_s: float,
    ) -> Endpoint:
        """Give an endpoint a new secret; the old one keeps signing beside it for `grace_s`."""
        return await self.db.one(
            Endpoint,
            "rotate_endpoint_secret",
            app_id,
            endpoint_id,
            ciphertext,
            key_id,
            public_key,
            grace_s,
            missing=NO_ENDPOINT,
        )

    async def delete(self, app_id: str, endpoint_id: str) -> None:
        """Delete an endpoint and its deliveries."""
        if await self.db.value("delete_endpoint", app_id, endpoint_id) is None:
            raise NotFound(NO_ENDPOINT)

    # Last in the class: below this method, `list` in an annotation would name it.
    async def list(self, app_id: str, after: str | None, limit: int) -> list[Endpoint]:
        """An app's endpoints in id order after a cursor."""
        return await self.db.all(Endpoint, "list_endpoints", app_id, after, limit)
