"""In-memory fakes of what the services need (hookrelay.services.ports), for unit tests that
run in milliseconds with no servers, as procrastinate tests its manager on an in-memory
connector. They keep the rules the services rely on (NotFound, one Idempotency-Key, held
deliveries, replays of originals in batches), not Postgres's SQL."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from hookrelay.errors import Conflict, NotFound
from hookrelay.ids import new_id
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
from hookrelay.services.access import ALL_SCOPES
from hookrelay.services.auth import KEY_PREFIX_SHOWN, hash_token
from hookrelay.services.ports import DueDelivery
from hookrelay.statuses import DeliveryStatus, EndpointStatus


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class FakeStore:
    """A dict-backed store of apps, keys, endpoints, events and deliveries; `calls` lists the
    operations asked of it, in order."""

    apps: dict[str, App] = field(default_factory=dict)
    keys: dict[bytes, ApiKey] = field(default_factory=dict)
    # portal sessions by their token's hash
    sessions: dict[bytes, PortalSession] = field(default_factory=dict)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    idempotency: dict[tuple[str, str], tuple[bytes, str]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    next_tx: int = 1

    # Test data, written as the API would have written it

    def add_app(self, name: str = "acme", uid: str | None = None) -> App:
        app = App(new_id("app_"), name, uid, _now(), _now())
        self.apps[app.id] = app
        return app

    def add_key(self, app_id: str, key: str, scopes: list[str] | None = None) -> ApiKey:
        """Give an app the key `key` (stored, as the store does, by its hash), with all
        scopes unless given."""
        return self._add_key(
            app_id,
            hash_token(key),
            key[:KEY_PREFIX_SHOWN],
            "default",
            list(ALL_SCOPES) if scopes is None else scopes,
        )

    def add_endpoint(self, app_id: str, **fields: Any) -> Endpoint:
        endpoint = Endpoint(
            **{
                "id": new_id("ep_"),
                "app_id": app_id,
                "url": "https://hooks.example/in",
                "description": "",
                "event_types": None,
                "status": EndpointStatus.ACTIVE,
                "disabled_reason": None,
                "signing": "hmac",
                "secret_ciphertext": b"",
                "secret_key_id": "",
                "headers": {},
                "rate_limit_per_s": None,
                "created_at": _now(),
                "updated_at": _now(),
                **fields,
            }
        )
        self.endpoints[endpoint.id] = endpoint
        return endpoint

    def add_event(self, app_id: str, event_type: str = "image.ready", **fields: Any) -> Event:
        """An event committed in a transaction of its own."""
        tx_id, self.next_tx = self.next_tx, self.next_tx + 1
        event = Event(
            **{
                "id": new_id("evt_"),
                "app_id": app_id,
                "type": event_type,
                "job_id": None,
                "body": "{}",
                "created_at": _now(),
                "tx_id": tx_id,
                **fields,
            }
        )
        self.events.append(event)
        return event

    # Apps and keys

    def _add_key(
        self, app_id: str, key_hash: bytes, key_prefix: str, name: str, scopes: list[str]
    ) -> ApiKey:
        key = ApiKey(new_id("key_"), app_id, key_prefix, name, scopes, _now(), None)
        self.keys[key_hash] = key
        return key

    def _app(self, ref: str) -> App:
        for app in self.apps.values():
            if ref in (app.id, app.uid):
                return app
        raise NotFound("no such app")

    # Endpoints

    def _endpoint(self, app_id: str, endpoint_id: str) -> Endpoint:
        endpoint = self.endpoints.get(endpoint_id)
        if endpoint is None or endpoint.app_id != app_id:
            raise NotFound("no such endpoint")
        return endpoint

    # Events

    def add_delivery(
        self,
        event: Event,
        endpoint: Endpoint,
        status: DeliveryStatus | None = None,
        replay_of: str | None = None,
    ) -> Delivery:
        """A delivery of `event` to `endpoint`: pending, or held if the endpoint is not active."""
        if status is None:
            active = endpoint.status == EndpointStatus.ACTIVE
            status = DeliveryStatus.PENDING if active else DeliveryStatus.HELD
        delivery = Delivery(
            id=new_id("dlv_"),
            app_id=event.app_id,
            event_id=event.id,
            endpoint_id=endpoint.id,
            status=status,
            attempt_count=0,
            next_attempt_at=None,
            last_status_code=None,
            last_error=None,
            created_at=_now(),
            updated_at=_now(),
            finished_at=None,
            event_type=event.type,
            replay_of=replay_of,
        )
        self.deliveries[delivery.id] = delivery
        return delivery

    def _deliveries_of(self, app_id: str) -> list[Delivery]:
        return [d for d in self.deliveries.values() if d.app_id == app_id]

    # The event log

    # Deliveries and replays

    def _delivery(self, app_id: str, delivery_id: str) -> Delivery:
        delivery = self.deliveries.get(delivery_id)
        if delivery is None or delivery.app_id != app_id:
            raise NotFound("no such delivery")
        return delivery

    def _replay(self, delivery: Delivery) -> Delivery:
        original_id = delivery.replay_of or delivery.id
        event = next(e for e in self.events if e.id == delivery.event_id)
        replay = self.add_delivery(
            event, self.endpoints[delivery.endpoint_id], replay_of=original_id
        )
        self.deliveries[original_id] = replace(self.deliveries[original_id], replayed_by=replay.id)
        return replay

    def _replayable(
        self, app_id: str, filters: DeliveryFilter, include_replayed: bool
    ) -> tuple[list[Delivery], list[Delivery]]:
        """The lost originals `filters` matches, newest first; and those of them whose endpoint
        is not disabled."""
        matched = [
            d
            for d in self._deliveries_of(app_id)
            if d.replay_of is None
            and (include_replayed or d.replayed_by is None)
            and filters.status in (None, d.status)
            and filters.endpoint_id in (None, d.endpoint_id)
            and filters.event_type in (None, d.event_type)
        ]
        matched.sort(key=lambda d: d.id, reverse=True)
        enabled = [
            d for d in matched if self.endpoints[d.endpoint_id].status != EndpointStatus.DISABLED
        ]
        return matched, enabled

    # The aggregates, as hookrelay.storage.Storage has them

    @property
    def as_apps(self) -> FakeApps:
        return FakeApps(self)

    @property
    def as_endpoints(self) -> FakeEndpoints:
        return FakeEndpoints(self)

    @property
    def as_events(self) -> FakeEvents:
        return FakeEvents(self)

    @property
    def as_deliveries(self) -> FakeDeliveries:
        return FakeDeliveries(self)


class FakeApps:
    """storage.apps: apps and their keys, over the fake's data."""

    def __init__(self, data: FakeStore) -> None:
        self.data = data

    async def credential_of_key(self, key_hash: bytes) -> Credential | None:
        self.data.calls.append("credential_of_key")
        key = self.data.keys.get(key_hash)
        if key is None or key.revoked_at is not None:
            return None
        return Credential(key.app_id, key.scopes, None)

    async def credential_of_portal_session(self, token_hash: bytes) -> Credential | None:
        self.data.calls.append("credential_of_portal_session")
        session = self.data.sessions.get(token_hash)
        if session is None or session.expires_at <= _now():
            return None
        return Credential(session.app_id, session.capabilities, session.expires_at)

    async def open_portal_session(
        self, app_id: str, token_hash: bytes, capabilities: list[str], lifetime_s: int
    ) -> PortalSession:
        self.data.calls.append("open_portal_session")
        self.data._app(app_id)
        session = PortalSession(
            new_id("ps_"), app_id, capabilities, _now() + timedelta(seconds=lifetime_s), _now()
        )
        self.data.sessions[token_hash] = session
        return session

    async def end_portal_sessions(self, app_id: str) -> int:
        self.data.calls.append("end_portal_sessions")
        ended = [h for h, s in self.data.sessions.items() if s.app_id == app_id]
        for token_hash in ended:
            del self.data.sessions[token_hash]
        return len(ended)

    async def get_key(self, app_id: str, key_id: str) -> ApiKey:
        self.data.calls.append("get_app_key")
        for key in self.data.keys.values():
            if key.app_id == app_id and key.id == key_id:
                return key
        raise NotFound("no such key")

    async def get(self, ref: str) -> App:
        self.data.calls.append("get_app")
        return self.data._app(ref)

    async def create(
        self,
        app_id: str,
        name: str,
        uid: str | None,
        key_hash: bytes,
        key_prefix: str,
        scopes: list[str],
    ) -> App:
        self.data.calls.append("create_app")
        if uid is not None and any(a.uid == uid for a in self.data.apps.values()):
            raise Conflict("an app with this uid already exists; pick another uid")
        app = App(app_id, name, uid, _now(), _now())
        self.data.apps[app_id] = app
        self.data._add_key(app_id, key_hash, key_prefix, "default", scopes)
        return app

    async def create_key(
        self, app_id: str, key_hash: bytes, key_prefix: str, name: str, scopes: list[str]
    ) -> ApiKey:
        self.data.calls.append("create_app_key")
        return self.data._add_key(app_id, key_hash, key_prefix, name, scopes)

    async def revoke_key(self, app_id: str, key_id: str) -> ApiKey:
        self.data.calls.append("revoke_app_key")
        for key_hash, key in self.data.keys.items():
            if key.app_id == app_id and key.id == key_id:
                self.data.keys[key_hash] = replace(key, revoked_at=key.revoked_at or _now())
                return self.data.keys[key_hash]
        raise NotFound("no such key")

    async def list(self, after: str | None, limit: int) -> list[App]:
        self.data.calls.append("list_apps")
        apps = [a for a in self.data.apps.values() if after is None or a.id > after]
        return sorted(apps, key=lambda a: a.id)[:limit]

    async def update(self, app_id: str, name: str, uid: str | None) -> App:
        self.data.calls.append("update_app")
        if app_id not in self.data.apps:
            raise NotFound("no such app")
        self.data.apps[app_id] = replace(
            self.data.apps[app_id], name=name, uid=uid, updated_at=_now()
        )
        return self.data.apps[app_id]

    async def delete(self, app_id: str) -> None:
        self.data.calls.append("delete_app")
        if self.data.apps.pop(app_id, None) is None:
            raise NotFound("no such app")
        self.data.keys = {h: k for h, k in self.data.keys.items() if k.app_id != app_id}
        self.data.sessions = {h: s for h, s in self.data.sessions.items() if s.app_id != app_id}


class FakeEndpoints:
    """storage.endpoints, over the fake's data."""

    def __init__(self, data: FakeStore) -> None:
        self.data = data

    async def create(self, endpoint: Endpoint) -> Endpoint:
        self.data.calls.append("create_endpoint")
        self.data.endpoints[endpoint.id] = endpoint
        return endpoint

    async def get(self, app_id: str, endpoint_id: str) -> Endpoint:
        self.data.calls.append("get_endpoint")
        return self.data._endpoint(app_id, endpoint_id)

    async def update(
        self, app_id: str, endpoint_id: str, change: Callable[[Endpoint], Endpoint]
    ) -> tuple[Endpoint, list[DueDelivery]]:
        self.data.calls.append("update_endpoint")
        before = self.data._endpoint(app_id, endpoint_id)
        after = self.data.endpoints[endpoint_id] = change(before)
        released: list[DueDelivery] = []
        if after.status == EndpointStatus.ACTIVE and before.status != EndpointStatus.ACTIVE:
            for delivery in self.data._deliveries_of(app_id):
                if delivery.endpoint_id == endpoint_id and delivery.status == DeliveryStatus.HELD:
                    self.data.deliveries[delivery.id] = replace(
                        delivery, status=DeliveryStatus.PENDING
                    )
                    released.append((delivery.id, delivery.attempt_count))
        return after, released

    async def rotate_secret(
        self,
        app_id: str,
        endpoint_id: str,
        ciphertext: bytes,
        key_id: str,
        public_key: str | None,
        grace_s: float,
    ) -> Endpoint:
        self.data.calls.append("rotate_endpoint_secret")
        endpoint = self.data._endpoint(app_id, endpoint_id)
        rotated = replace(
            endpoint, secret_ciphertext=ciphertext, secret_key_id=key_id, public_key=public_key
        )
        self.data.endpoints[endpoint_id] = rotated
        return rotated

    async def delete(self, app_id: str, endpoint_id: str) -> None:
        self.data.calls.append("delete_endpoint")
        self.data._endpoint(app_id, endpoint_id)
        del self.data.endpoints[endpoint_id]


class FakeEvents:
    """storage.events: ingest and the log, over the fake's data."""

    def __init__(self, data: FakeStore) -> None:
        self.data = data

    async def insert_together(self, writes: list[EventWrite]) -> list[list[str] | None]:
        self.data.calls.append("insert_events_together")
        recorded: list[list[str] | None] = []
        for write in writes:
            if write.idempotency is not None and (
                (write.events[0].app_id, write.idempotency.stored_key) in self.data.idempotency
            ):
                recorded.append(None)
            else:
                recorded.append(self._record(write.events, write.idempotency, write.answer))
        return recorded

    async def insert_once(
        self, events: list[Event], idempotency: Idempotency | None, answer: Any
    ) -> tuple[Any, list[str]]:
        self.data.calls.append("insert_events_once")
        if idempotency is not None:
            key = (events[0].app_id, idempotency.stored_key)
            if key in self.data.idempotency:
                request_hash, first_answer = self.data.idempotency[key]
                if request_hash != idempotency.request_hash:
                    raise Conflict(
                        "this Idempotency-Key was used with a different request",
                        {"idempotency_key": idempotency.key},
                    )
                return orjson.loads(first_answer), []
        return answer, self._record(events, idempotency, answer)

    async def insert_example(self, event: Event, endpoint_id: str) -> tuple[str, str | None]:
        self.data.calls.append("insert_example_event")
        endpoint = self.data._endpoint(event.app_id, endpoint_id)
        if endpoint.status != EndpointStatus.ACTIVE:
            return endpoint.status, None
        tx_id, self.data.next_tx = self.data.next_tx, self.data.next_tx + 1
        self.data.events.append(replace(event, tx_id=tx_id))
        return endpoint.status, self.data.add_delivery(event, endpoint).id

    def _record(
        self, events: list[Event], idempotency: Idempotency | None, answer: Any
    ) -> list[str]:
        """Events, their deliveries and their key, as one transaction; the deliveries due now."""
        if idempotency is not None:
            key = (events[0].app_id, idempotency.stored_key)
            self.data.idempotency[key] = (idempotency.request_hash, orjson.dumps(answer).decode())
        tx_id, self.data.next_tx = self.data.next_tx, self.data.next_tx + 1
        due = []
        for event in events:
            self.data.events.append(replace(event, tx_id=tx_id))
            for endpoint in self.data.endpoints.values():
                if endpoint.app_id == event.app_id and (
                    endpoint.event_types is None or event.type in endpoint.event_types
                ):
                    delivery = self.data.add_delivery(event, endpoint)
                    if delivery.status == DeliveryStatus.PENDING:
                        due.append(delivery.id)
        return due

    async def log_horizon(self) -> LogPosition:
        self.data.calls.append("log_horizon")
        return (self.data.next_tx, "")

    async def log_position(self, app_id: str, event_id: str) -> LogPosition:
        self.data.calls.append("log_position")
        for event in self.data.events:
            if event.app_id == app_id and event.id == event_id:
                return event.position
        raise NotFound("no such event in this app's log")

    async def job_log_start(self, app_id: str, job_id: str) -> LogPosition:
        self.data.calls.append("job_log_start")
        txs = [e.tx_id for e in self.data.events if e.app_id == app_id and e.job_id == job_id]
        return (min(txs, default=self.data.next_tx), "")

    async def job_events(
        self, app_id: str, job_id: str, after: LogPosition, limit: int
    ) -> list[Event]:
        self.data.calls.append("job_events")
        found = [
            e
            for e in self.data.events
            if e.app_id == app_id and e.job_id == job_id and e.position > after
        ]
        return sorted(found, key=lambda e: e.position)[:limit]


class FakeDeliveries:
    """storage.deliveries: replays, over the fake's data."""

    def __init__(self, data: FakeStore) -> None:
        self.data = data

    async def get(self, app_id: str, delivery_id: str) -> Delivery:
        self.data.calls.append("get_delivery")
        return self.data._delivery(app_id, delivery_id)

    async def replay(self, app_id: str, delivery_id: str) -> tuple[str, str, str]:
        self.data.calls.append("replay_delivery")
        delivery = self.data._delivery(app_id, delivery_id)
        replay = self.data._replay(delivery)
        return replay.id, replay.status, delivery.replay_of or delivery.id

    async def count(
        self, app_id: str, filters: DeliveryFilter, include_replayed: bool
    ) -> ReplayResult:
        self.data.calls.append("count_deliveries")
        matched, replayable = self.data._replayable(app_id, filters, include_replayed)
        return ReplayResult(len(matched), 0, len(replayable))

    async def replay_batch(
        self,
        app_id: str,
        filters: DeliveryFilter,
        include_replayed: bool,
        before: str | None,
        limit: int,
    ) -> tuple[str | None, int, list[str]]:
        self.data.calls.append("replay_batch")
        _, replayable = self.data._replayable(app_id, filters, include_replayed)
        batch = [d for d in replayable if before is None or d.id < before][:limit]
        replays = [self.data._replay(d) for d in batch]
        due = [r.id for r in replays if r.status == DeliveryStatus.PENDING]
        return (None if len(batch) < limit else batch[-1].id), len(batch), due


class RecordingQueue:
    """The delivery queue (DeliveryQueue.enqueue): records what it is given; set `failure` to
    make it raise as Redis would."""

    def __init__(self) -> None:
        self.enqueued: list[DueDelivery] = []
        self.failure: Exception | None = None

    async def enqueue(self, deliveries: list[DueDelivery]) -> object:
        if self.failure is not None:
            raise self.failure
        self.enqueued.extend(deliveries)
        return len(deliveries)


class RecordingNewDeliveries:
    """The enqueue of new deliveries (EnqueueCoalescer.enqueue): records the ids it is given;
    set `failure` to make it raise as Redis would, `gate` to hold it until the gate is set."""

    def __init__(self) -> None:
        self.enqueued: list[str] = []
        self.calls = 0
        self.failure: Exception | None = None
        self.gate: asyncio.Event | None = None

    async def enqueue(self, delivery_ids: list[str]) -> None:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.failure is not None:
            raise self.failure
        self.enqueued.extend(delivery_ids)


class RecordingNotices:
    """Commit notices (CommitNotifier.committed) and revocation announcements, as lists."""

    def __init__(self) -> None:
        self.committed_apps: list[str] = []
        self.revoked_apps: list[str] = []

    def committed(self, app_id: str) -> None:
        self.committed_apps.append(app_id)

    async def announce_revocation(self, app_id: str) -> None:
        self.revoked_apps.append(app_id)


class ScriptedResolver:
    """Answers each host named in `answers` with those addresses, and an address with itself
    (as the system's resolver does); any other name does not resolve. Remembers the hosts it
    was asked."""

    def __init__(self, answers: Mapping[str, Sequence[str]] | None = None) -> None:
        self.answers = dict(answers or {})
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int = 0, family: int = 0) -> list[dict[str, Any]]:
        self.asked.append(host)
        try:
            addresses = self.answers.get(host) or [str(ipaddress.ip_address(host))]
        except ValueError:
            raise OSError(f"{host} does not resolve") from None
        return [
            {"hostname": host, "host": address, "port": port, "family": family}
            for address in addresses
        ]
