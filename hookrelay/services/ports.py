"""What the services need from the rest of hookrelay, as Protocols: the storage operations
each one calls (the aggregates of hookrelay.storage have these shapes), the queue, the
notices, the DNS resolver.

Production passes the storage aggregates, the broker's queue and notices; unit tests pass the
in-memory fakes of tests/fakes.py.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from hookrelay.models import (
    ApiKey,
    App,
    Credential,
    Delivery,
    DeliveryFilter,
    Endpoint,
    Event,
    EventWrite,
    Idempotency,
    LogPosition,
    PortalSession,
    ReplayResult,
)

# (delivery id, attempts made so far): a delivery due again, for the lane of its attempt.
DueDelivery = tuple[str, int]
# Tells every API process that one of an app's credentials was revoked (a key, its portal
# sessions, or the app deleted with all of them).
AnnounceRevocation = Callable[[str], Awaitable[None]]


class KeyStore(Protocol):
    """What authentication reads: what a key or a portal session opens, and an app by id or
    uid."""

    async def credential_of_key(self, key_hash: bytes) -> Credential | None: ...

    async def credential_of_portal_session(self, token_hash: bytes) -> Credential | None: ...

    async def get(self, ref: str) -> App: ...


class AppStore(Protocol):
    """Apps, their keys and their portal sessions."""

    async def create(
        self,
        app_id: str,
        name: str,
        uid: str | None,
        key_hash: bytes,
        key_prefix: str,
        scopes: list[str],
    ) -> App: ...

    async def create_key(
        self, app_id: str, key_hash: bytes, key_prefix: str, name: str, scopes: list[str]
    ) -> ApiKey: ...

    async def get_key(self, app_id: str, key_id: str) -> ApiKey: ...

    async def revoke_key(self, app_id: str, key_id: str) -> ApiKey: ...

    async def open_portal_session(
        self, app_id: str, token_hash: bytes, capabilities: list[str], lifetime_s: int
    ) -> PortalSession: ...

    async def end_portal_sessions(self, app_id: str) -> int: ...

    async def get(self, ref: str) -> App: ...

    async def list(self, after: str | None, limit: int) -> list[App]: ...

    async def update(self, app_id: str, name: str, uid: str | None) -> App: ...

    async def delete(self, app_id: str) -> None: ...


class EndpointStore(Protocol):
    """Endpoints, their secrets, and the deliveries held while they were not active."""

    async def create(self, endpoint: Endpoint) -> Endpoint: ...

    async def get(self, app_id: str, endpoint_id: str) -> Endpoint: ...

    async def update(
        self, app_id: str, endpoint_id: str, change: Callable[[Endpoint], Endpoint]
    ) -> tuple[Endpoint, list[DueDelivery]]: ...

    async def rotate_secret(
        self,
        app_id: str,
        endpoint_id: str,
        ciphertext: bytes,
        key_id: str,
        public_key: str | None,
        grace_s: float,
    ) -> Endpoint: ...

    async def delete(self, app_id: str, endpoint_id: str) -> None: ...


class EventStore(Protocol):
    """Events with their deliveries, written in one transaction, once per Idempotency-Key."""

    async def insert_together(self, writes: list[EventWrite]) -> list[list[str] | None]: ...

    async def insert_once(
        self, events: list[Event], idempotency: Idempotency | None, answer: Any
    ) -> tuple[Any, list[str]]: ...

    async def insert_example(self, event: Event, endpoint_id: str) -> tuple[str, str | None]: ...


class EndpointReader(Protocol):
    """One endpoint of an app."""

    async def get(self, app_id: str, endpoint_id: str) -> Endpoint: ...


class ReplayStore(Protocol):
    """Deliveries made again: one, or every lost one a filter matches, in batches."""

    async def get(self, app_id: str, delivery_id: str) -> Delivery: ...

    async def replay(self, app_id: str, delivery_id: str) -> tuple[str, str, str]: ...

    async def count(
        self, app_id: str, filters: DeliveryFilter, include_replayed: bool
    ) -> ReplayResult: ...

    async def replay_batch(
        self,
        app_id: str,
        filters: DeliveryFilter,
        include_replayed: bool,
        before: str | None,
        limit: int,
    ) -> tuple[str | None, int, list[str]]: ...


class LogStore(Protocol):
    """Places in an app's event log, and a job's events in commit order."""

    async def log_horizon(self) -> LogPosition: ...

    async def log_position(self, app_id: str, event_id: str) -> LogPosition: ...

    async def job_log_start(self, app_id: str, job_id: str) -> LogPosition: ...

    async def job_events(
        self, app_id: str, job_id: str, after: LogPosition, limit: int
    ) -> list[Event]: ...


class Queue(Protocol):
    """The delivery queue: one job per delivery due again (DeliveryQueue)."""

    async def enqueue(self, deliveries: list[DueDelivery]) -> object: ...


class NewDeliveryQueue(Protocol):
    """New deliveries due now, enqueued together with other requests' (EnqueueCoalescer)."""

    async def enqueue(self, delivery_ids: list[str]) -> None: ...


class CommitNotices(Protocol):
    """Tells the readers of an app's log (streams, long-polls) that it grew (CommitNotifier)."""

    def committed(self, app_id: str) -> None: ...


class Resolver(Protocol):
    """Resolves a callback host's name (aiohttp's resolvers have this shape)."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> Sequence[Mapping[str, Any]]: ...
