"""What the API does, as domain operations: apps and keys, endpoints, event ingest."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver

from hookrelay import signing
from hookrelay.endpoint_headers import check_custom_headers
from hookrelay.errors import Conflict, Forbidden, InvalidPayload, NotFound
from hookrelay.events import build_event
from hookrelay.ids import new_id
from hookrelay.jobs import Job
from hookrelay.keycache import KeyCache
from hookrelay.live.notify import (
    CommitNotifier,
    announce_revocation,
    log_channel,
    revocation_channel,
)
from hookrelay.live.tokens import StreamGrant, issue_token, verify_token
from hookrelay.models import (
    LOG_START,
    App,
    AppKey,
    Attempt,
    AttemptFilter,
    Delivery,
    DeliveryFilter,
    Endpoint,
    Event,
    EventFilter,
    LogPosition,
    ReplayResult,
)
from hookrelay.operational import is_operational
from hookrelay.outbound import check_callback_url
from hookrelay.queue import DeliveryQueue, EnqueueCoalescer
from hookrelay.schemas import check_data_job_id, validate_event_data, validate_request
from hookrelay.secretbox import SecretBox
from hookrelay.settings import Settings
from hookrelay.storage import Storage
from hookrelay.storage.events import Idempotency

log = structlog.get_logger(__name__)

APP_KEY_PREFIX = "hrk_"
APP_KEY_BYTES = 32
KEY_PREFIX_SHOWN = 12  # characters of a key kept in clear, to tell keys apart in listings
# An Idempotency-Key binds its first answer for this long.
IDEMPOTENCY_TTL_S = 24 * 3600.0
# Deliveries replayed per transaction in a bulk replay.
REPLAY_BATCH = 2000
# A job's events are folded this many per query.
JOB_EVENTS_PAGE = 1000


@dataclass(frozen=True)
class Principal:
    """Who is calling: the admin, one app's key, or a stream token (which the auth middleware
    lets open only the event stream of its app; of one job, if it names one)."""

    app_id: str | None  # None for the admin
    job_id: str | None = None  # a stream token's job

    @property
    def is_admin(self) -> bool:
        return self.app_id is None


ADMIN = Principal(app_id=None)


def hash_app_key(key: str) -> bytes:
    """App keys are 32 random bytes, so one SHA-256 is a safe way to store them."""
    return hashlib.sha256(key.encode()).digest()


class Gateway:
    """The operations behind the HTTP API."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        queue: DeliveryQueue,
        box: SecretBox,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.queue = queue
        self.box = box
        # Names of callback hosts are resolved with this (tests give one they control).
        self.resolver = resolver or DefaultResolver()
        # One query per key per few seconds, not one per request; revocations, announced on
        # the revocation channel, empty it on every API process (see app.py).
        self.keys = KeyCache()
        self.revocation_channel = revocation_channel(settings.queue_name)
        self._coalescer = EnqueueCoalescer(queue)
        self.notifier = CommitNotifier(queue.redis, log_channel(settings.queue_name))

    # Who is calling

    async def authenticate(self, token: str) -> Principal | None:
        """Return the principal a bearer token stands for, or None."""
        admin_token = self.settings.admin_token
        if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
            return ADMIN
        if not token.startswith(APP_KEY_PREFIX):
            return None
        key_hash = hash_app_key(token)
        cached = self.keys.get(key_hash, time.monotonic())
        if cached is not None:
            app_id = cached.app_id
        else:
            generation = self.keys.generation
            app_id = await self.storage.apps.id_for_key(key_hash)
            self.keys.put(key_hash, app_id, time.monotonic(), generation)
        return None if app_id is None else Principal(app_id)

    def authenticate_stream_token(self, token: str) -> Principal | None:
        """Return the principal a stream token stands for, or None if it is not valid."""
        grant = verify_token(self.settings.all_secret_keys(), token, time.time())
        return None if grant is None else Principal(grant.app_id, grant.job_id)

    async def issue_stream_token(
        self, principal: Principal, ref: str, body: Any
    ) -> tuple[str, StreamGrant]:
        """A token that opens the app's event stream (of one job, if the body names one) from
        a browser, where EventSource cannot send an Authorization header."""
        app_id = await self.app_id_for(principal, ref)
        body = validate_request("stream_token_create", body)
        ttl_s = body.get("expires_in", self.settings.stream_token_ttl_s)
        grant = StreamGrant(app_id, body.get("job_id"), int(time.time() + ttl_s))
        return issue_token(self.settings.require_secret_key(), grant), grant

    async def app_for(self, principal: Principal, ref: str) -> App:
        """Return the app `ref` names, if the caller may see it; others' apps do not exist."""
        app = await self.storage.apps.get(ref)
        if not principal.is_admin and app.id != principal.app_id:
            raise NotFound("no such app")
        return app

    async def app_id_for(self, principal: Principal, ref: str) -> str:
        """Like app_for, without a query when an app key names its own app by id."""
        if principal.app_id is not None and ref == principal.app_id:
            return ref
        return (await self.app_for(principal, ref)).id

    # Apps

    async def create_app(self, principal: Principal, body: Any) -> tuple[App, str]:
        """Create an app; return it and its first key (shown once)."""
        if not principal.is_admin:
            raise Forbidden("only the admin token may create apps")
        body = validate_request("app_create", body)
        key = _new_app_key()
        app = await self.storage.apps.create(
            new_id("app_"), body["name"], body.get("uid"), hash_app_key(key), key[:KEY_PREFIX_SHOWN]
        )
        log.info("app created", app_id=app.id)
        return app, key

    async def create_app_key(self, principal: Principal, ref: str, body: Any) -> tuple[AppKey, str]:
        """Add a key to an app; return it and the key itself (shown once)."""
        app_id = await self.app_id_for(principal, ref)
        body = validate_request("app_key_create", body)
        key = _new_app_key()
        created = await self.storage.apps.create_key(
            app_id, hash_app_key(key), key[:KEY_PREFIX_SHOWN], body.get("name", "")
        )
        log.info("app key created", app_id=app_id, key_id=created.id)
        return created, key

    async def list_app_keys(
        self, principal: Principal, ref: str, after: str | None, limit: int
    ) -> list[AppKey]:
        app_id = await self.app_id_for(principal, ref)
        return await self.storage.apps.list_keys(app_id, after, limit)

    async def revoke_app_key(self, principal: Principal, ref: str, key_id: str) -> AppKey:
        app_id = await self.app_id_for(principal, ref)
        revoked = await self.storage.apps.revoke_key(app_id, key_id)
        await self._revoked(app_id)
        log.info("app key revoked", app_id=app_id, key_id=key_id)
        return revoked

    async def list_apps(self, principal: Principal, after: str | None, limit: int) -> list[App]:
        if principal.app_id is not None:
            app = await self.storage.apps.get(principal.app_id)
            return [app] if after is None or app.id > after else []
        return await self.storage.apps.list(after, limit)

    async def update_app(self, principal: Principal, ref: str, body: Any) -> App:
        app = await self.app_for(principal, ref)
        body = validate_request("app_update", body)
        return await self.storage.apps.update(
            app.id, body.get("name", app.name), body.get("uid", app.uid)
        )

    async def delete_app(self, principal: Principal, ref: str) -> None:
        app = await self.app_for(principal, ref)
        await self.storage.apps.delete(app.id)
        await self._revoked(app.id)  # its keys went with it
        log.info("app deleted", app_id=app.id)

    async def _revoked(self, app_id: str) -> None:
        """After a revocation commits: this process forgets the app's keys at once, and every
        other API process when the notice reaches it (KeyCache's TTL if it never does)."""
        self.keys.forget_app(app_id)
        await announce_revocation(self.queue.redis, self.revocation_channel, app_id)

    # Endpoints

    async def create_endpoint(
        self, principal: Principal, ref: str, body: Any
    ) -> tuple[Endpoint, str]:
        """Register an endpoint; return it and its signing secret."""
        app_id = await self.app_id_for(principal, ref)
        body = validate_request("endpoint_create", body)
        check_custom_headers(body.get("headers"))
        await check_callback_url(body["url"], self.settings.allowed_cidrs, self.resolver)
        scheme = body.get("signing", "hmac")
        secret = _new_secret(scheme)
        endpoint_id = new_id("ep_")
        ciphertext, key_id = self.box.encrypt(secret, endpoint_id)
        now = datetime.now(UTC)
        endpoint = await self.storage.endpoints.create(
            Endpoint(
                id=endpoint_id,
                app_id=app_id,
                url=body["url"],
                description=body.get("description", ""),
                event_types=body.get("event_types"),
                status="active",
                disabled_reason=None,
                signing=scheme,
                secret_ciphertext=ciphertext,
                secret_key_id=key_id,
                headers=body.get("headers") or {},
                rate_limit_per_s=body.get("rate_limit_per_s"),
                created_at=now,
                updated_at=now,
                public_key=_public_key(secret),
            )
        )
        log.info("endpoint created", app_id=app_id, endpoint_id=endpoint.id)
        return endpoint, secret

    def endpoint_secret(self, endpoint: Endpoint) -> str:
        """Return an endpoint's signing secret, decrypted."""
        return self.box.decrypt(endpoint.secret_ciphertext, endpoint.secret_key_id, endpoint.id)

    async def get_endpoint(self, principal: Principal, ref: str, endpoint_id: str) -> Endpoint:
        app_id = await self.app_id_for(principal, ref)
        return await self.storage.endpoints.get(app_id, endpoint_id)

    async def list_endpoints(
        self, principal: Principal, ref: str, after: str | None, limit: int
    ) -> list[Endpoint]:
        app_id = await self.app_id_for(principal, ref)
        return await self.storage.endpoints.list(app_id, after, limit)

    async def update_endpoint(
        self, principal: Principal, ref: str, endpoint_id: str, body: Any
    ) -> Endpoint:
        """Change an endpoint; resuming it releases the deliveries held while it was not active."""
        app_id = await self.app_id_for(principal, ref)
        body = validate_request("endpoint_update", body)
        check_custom_headers(body.get("headers"))
        if "url" in body:
            await check_callback_url(body["url"], self.settings.allowed_cidrs, self.resolver)

        def change(endpoint: Endpoint) -> Endpoint:
            status = body.get("status", endpoint.status)
            return replace(
                endpoint,
                url=body.get("url", endpoint.url),
                description=body.get("description", endpoint.description),
                event_types=body.get("event_types", endpoint.event_types),
                headers=(body["headers"] or {}) if "headers" in body else endpoint.headers,
                rate_limit_per_s=body.get("rate_limit_per_s", endpoint.rate_limit_per_s),
                status=status,
                disabled_reason=None if status != "disabled" else endpoint.disabled_reason,
            )

        endpoint, released = await self.storage.endpoints.update(app_id, endpoint_id, change)
        if released:
            log.info("held deliveries released", endpoint_id=endpoint_id, count=len(released))
            await self._enqueue(released)
        return endpoint

    async def rotate_secret(
        self, principal: Principal, ref: str, endpoint_id: str
    ) -> tuple[Endpoint, str]:
        """Give an endpoint a new secret; the old one keeps signing beside it for the grace
        period, so receivers can switch without missing a delivery."""
        app_id = await self.app_id_for(principal, ref)
        endpoint = await self.storage.endpoints.get(app_id, endpoint_id)
        secret = _new_secret(endpoint.signing)
        ciphertext, key_id = self.box.encrypt(secret, endpoint.id)
        rotated = await self.storage.endpoints.rotate_secret(
            app_id,
            endpoint.id,
            ciphertext,
            key_id,
            _public_key(secret),
            self.settings.secret_rotation_grace_s,
        )
        log.info("endpoint secret rotated", app_id=app_id, endpoint_id=endpoint.id)
        return rotated, secret

    async def delete_endpoint(self, principal: Principal, ref: str, endpoint_id: str) -> None:
        app_id = await self.app_id_for(principal, ref)
        await self.storage.endpoints.delete(app_id, endpoint_id)
        log.info("endpoint deleted", app_id=app_id, endpoint_id=endpoint_id)

    # Events

    async def ingest(
        self,
        principal: Principal,
        ref: str,
        bodies: list[Any],
        idempotency_key: str | None,
        render: Callable[[list[Event]], Any],
        batch: bool = False,
    ) -> Any:
        """Validate and record events (all or none) with their deliveries, then enqueue those
        due now; return `render(events)`, or the first answer given to `idempotency_key` on
        the same route (the single-event one, or with `batch` the batch one)."""
        app_id = await self.app_id_for(principal, ref)
        now = datetime.now(UTC)
        events = [
            self._event_from(app_id, body, now, f"$.events[{n}]" if len(bodies) > 1 else "$")
            for n, body in enumerate(bodies)
        ]
        idempotency = None
        if idempotency_key is not None:
            digest = hashlib.sha256(orjson.dumps(bodies, option=orjson.OPT_SORT_KEYS)).digest()
            route = "events/batch" if batch else "events"
            idempotency = Idempotency(idempotency_key, digest, IDEMPOTENCY_TTL_S, route)
        answer, due = await self.storage.events.insert_once(events, idempotency, render(events))
        if due:
            log.info("events accepted", app_id=app_id, events=len(events), deliveries=len(due))
            await self._enqueue_new(due)
        self.notifier.committed(app_id)
        return answer

    def _event_from(self, app_id: str, body: Any, now: datetime, path: str) -> Event:
        try:
            body = validate_request("event_create", body)
            event_type: str = body["type"]
            if is_operational(event_type):
                raise InvalidPayload(
                    f"{event_type} is reserved for events hookrelay itself reports",
                    [{"path": "$.type", "message": "is a reserved operational event type"}],
                )
            data: dict[str, Any] = body["data"]
            job_id = _job_id(body, data)
            if job_id is not None and event_type.startswith("job.") and "job_id" not in data:
                data = {**data, "job_id": job_id}
            validate_event_data(event_type, data)
        except InvalidPayload as exc:
            if path != "$" and isinstance(exc.details, list):
                exc.details = [
                    {**d, "path": path + d["path"][1:]} for d in exc.details if isinstance(d, dict)
                ]
            raise
        return build_event(app_id, event_type, data, job_id, now)

    async def _enqueue(self, deliveries: list[tuple[str, int]]) -> None:
        """Enqueue after commit; if Redis is down the rows stay due and the sweeper sends them."""
        if deliveries:
            await self._safely(self.queue.enqueue(deliveries))

    async def _enqueue_new(self, delivery_ids: list[str]) -> None:
        if delivery_ids:
            await self._safely(self._coalescer.enqueue(delivery_ids))

    async def _safely(self, enqueueing: Awaitable[object]) -> None:
        try:
            await enqueueing
        except Exception as exc:  # Redis trouble of any kind: the rows are safe in Postgres
            log.warning("enqueue failed; the sweeper will pick these up", error=repr(exc))

    async def get_event(
        self, principal: Principal, ref: str, event_id: str
    ) -> tuple[Event, list[Delivery]]:
        """One event with the state of its delivery to each endpoint."""
        app_id = await self.app_id_for(principal, ref)
        event = await self.storage.events.get(app_id, event_id)
        return event, await self.storage.deliveries.of_event(event.id)

    async def list_events(
        self, principal: Principal, ref: str, filters: EventFilter, before: str | None, limit: int
    ) -> list[Event]:
        app_id = await self.app_id_for(principal, ref)
        return await self.storage.events.list(app_id, filters, before, limit)

    # The event log, read live (long-poll, SSE) and folded into jobs

    async def log_start(
        self, principal: Principal, ref: str, resume_after: str | None, job_id: str | None
    ) -> tuple[str, LogPosition]:
        """The app's id, and where a reader of its log starts: after the event it last saw;
        else, following one job, before that job's first event; else at the end (new events
        only)."""
        # Looked up even for its own key's app: a stream token outlives the app it was for.
        app_id = (await self.app_for(principal, ref)).id
        if resume_after is not None:
            return app_id, await self.storage.events.log_position(app_id, resume_after)
        if job_id is not None:
            return app_id, await self.storage.events.job_log_start(app_id, job_id)
        return app_id, await self.storage.events.log_horizon()

    async def job(self, principal: Principal, ref: str, job_id: str) -> Job:
        """A job's current state, folded from all its events in commit order."""
        app_id = await self.app_id_for(principal, ref)
        job = Job(job_id)
        after = LOG_START
        while True:
            events = await self.storage.events.job_events(app_id, job_id, after, JOB_EVENTS_PAGE)
            for event in events:
                job.apply(event)
            if len(events) < JOB_EVENTS_PAGE:
                break
            after = events[-1].position
        if job.event_count == 0:
            raise NotFound("no events for this job")
        return job

    # Deliveries and replays

    async def list_deliveries(
        self,
        principal: Principal,
        ref: str,
        filters: DeliveryFilter,
        before: str | None,
        limit: int,
    ) -> list[Delivery]:
        app_id = await self.app_id_for(principal, ref)
        return await self.storage.deliveries.list(app_id, filters, before, limit)

    async def get_delivery(
        self, principal: Principal, ref: str, delivery_id: str
    ) -> tuple[Delivery, list[Attempt]]:
        """One delivery with every attempt made at it."""
        app_id = await self.app_id_for(principal, ref)
        delivery = await self.storage.deliveries.get(app_id, delivery_id)
        return delivery, await self.storage.deliveries.attempts(delivery.id)

    async def list_attempts(
        self, principal: Principal, ref: str, filters: AttemptFilter, before: str | None, limit: int
    ) -> list[Attempt]:
        app_id = await self.app_id_for(principal, ref)
        return await self.storage.deliveries.list_attempts(app_id, filters, before, limit)

    async def replay_delivery(
        self, principal: Principal, ref: str, delivery_id: str
    ) -> tuple[str, str]:
        """Send a delivery's event to its endpoint again, as a new delivery, whatever became of
        earlier replays (asked for by name); return its id and the original it replays."""
        app_id = await self.app_id_for(principal, ref)
        delivery = await self.storage.deliveries.get(app_id, delivery_id)
        await self._refuse_if_disabled(app_id, delivery.endpoint_id)
        new_id, status, original = await self.storage.deliveries.replay(app_id, delivery.id)
        if status == "pending":
            await self._enqueue([(new_id, 0)])
        log.info("delivery replayed", app_id=app_id, delivery_id=delivery.id, replay_id=new_id)
        return new_id, original

    async def replay_deliveries(
        self,
        principal: Principal,
        ref: str,
        filters: DeliveryFilter,
        dry_run: bool,
        include_replayed: bool = False,
    ) -> ReplayResult:
        """Replay the originals matching `filters` (disabled endpoints' excepted) that are still
        lost: never a replay, and unless `include_replayed`, no original that a replay recovered
        or is still replaying. In batches that each commit and enqueue on their own, so that
        memory and locks stay small."""
        app_id = await self.app_id_for(principal, ref)
        if filters.endpoint_id is not None:
            await self._refuse_if_disabled(app_id, filters.endpoint_id)
        counted = await self.storage.deliveries.count(app_id, filters, include_replayed)
        if dry_run:
            return counted
        replayed, cursor = 0, None
        while True:
            cursor, count, due = await self.storage.deliveries.replay_batch(
                app_id, filters, include_replayed, cursor, REPLAY_BATCH
            )
            replayed += count
            await self._enqueue_new(due)
            if cursor is None:
                break
        log.info("deliveries replayed", app_id=app_id, replayed=replayed)
        return ReplayResult(counted.matched, replayed, counted.replayable)

    async def _refuse_if_disabled(self, app_id: str, endpoint_id: str) -> None:
        endpoint = await self.storage.endpoints.get(app_id, endpoint_id)
        if endpoint.status == "disabled":
            raise Conflict(
                "the endpoint is disabled; enable it (PATCH status active) before replaying",
                {"endpoint_id": endpoint_id, "disabled_reason": endpoint.disabled_reason},
            )


def _new_app_key() -> str:
    return APP_KEY_PREFIX + base64.urlsafe_b64encode(os.urandom(APP_KEY_BYTES)).decode().rstrip("=")


def _new_secret(scheme: str) -> str:
    if scheme == "ed25519":
        return signing.generate_ed25519_secret()
    return signing.generate_hmac_secret()


def _public_key(secret: str) -> str | None:
    if secret.startswith(signing.ED25519_SECRET_PREFIX):
        return signing.public_key_of(secret)
    return None


def _job_id(body: dict[str, Any], data: dict[str, Any]) -> str | None:
    """The job an event belongs to: `job_id` beside `data` or inside it (they must agree).
    The one beside is checked by the request's schema; the one inside, here, whatever the
    event's type."""
    check_data_job_id(data)
    outer = body.get("job_id")
    inner = data.get("job_id")
    if outer is not None and inner is not None and outer != inner:
        raise InvalidPayload(
            "job_id and data.job_id differ",
            [{"path": "$.job_id", "message": "must equal data.job_id when both are given"}],
        )
    job_id: str | None = outer if outer is not None else inner
    return job_id
