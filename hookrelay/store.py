"""The one module that runs SQL: named queries from sql/queries.sql over an asyncpg pool."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import orjson

from hookrelay.errors import BadRequest, Conflict, DependencyUnavailable, NotFound
from hookrelay.ids import id_bound
from hookrelay.models import (
    LOG_START,
    App,
    AppKey,
    Attempt,
    AttemptFilter,
    AttemptOutcome,
    ClaimedDelivery,
    Delivery,
    DeliveryFilter,
    Endpoint,
    Event,
    EventFilter,
    HealthPolicy,
    LogFilter,
    LogPosition,
    LogRead,
    RecordedAttempt,
    ReplayResult,
)
from hookrelay.operational import is_operational
from hookrelay.sql import queries

T = TypeVar("T")
# A page of the event log holds about this many bytes of bodies at most (and one event more).
READ_LOG_BYTES = 1024 * 1024
# A query waits at most this long for a free connection before the caller is told the database
# is unavailable.
ACQUIRE_TIMEOUT_S = 10.0
# What a unique constraint's violation means to the caller; the constraint names are Postgres's
# defaults for the UNIQUE columns of 0001_initial.sql.
_CONFLICT = "a resource with that identity already exists"
_CONFLICTS = {"apps_uid_key": "an app with this uid already exists; pick another uid"}
SweepCursor = tuple[datetime, str]
# Where a scan of overdue deliveries starts: before every (next_attempt_at, id).
SWEEP_START: SweepCursor = (datetime.min.replace(tzinfo=UTC), "")


@dataclass(frozen=True)
class Idempotency:
    """An Idempotency-Key sent with a request to a route, and how long it binds."""

    key: str
    request_hash: bytes
    ttl_s: float
    route: str  # "events" or "events/batch": one key on two routes is two keys

    @property
    def stored_key(self) -> str:
        """The key as stored: the route first, so that a key binds per route (the rows
        written before routes were told apart got theirs in migration 0008)."""
        return f"{self.route}:{self.key}"


@dataclass(frozen=True)
class Sealed:
    """An endpoint's encrypted secrets, as stored."""

    id: str
    secret_ciphertext: bytes
    secret_key_id: str
    previous_secret_ciphertext: bytes | None
    previous_secret_key_id: str | None


@dataclass(frozen=True)
class Sweep:
    # (delivery id, attempts made, due at): due for a while; their jobs may be lost, or waiting
    overdue: list[tuple[str, int, datetime]]
    # (delivery id, attempts made): expired leases and released holds, which have no job
    jobless: list[tuple[str, int]]
    next_cursor: SweepCursor  # where the next scan of overdue deliveries continues


Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

# Errors that mean "Postgres is not reachable right now", not "this request is wrong".
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # Shutting down, starting up, crashed: Postgres is there but will not serve.
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.TooManyConnectionsError,
)


async def _init_connection(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=_jsonb_encode, decoder=orjson.loads, format="text"
    )


async def _reset_connection(connection: asyncpg.Connection) -> None:
    """Given back to the pool: hookrelay leaves no session state behind (no SET, LISTEN, cursor
    or session lock on pooled connections), so asyncpg's default reset query, a round trip on
    every release, is skipped; only an unfinished transaction is rolled back."""
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


def _jsonb_encode(value: Any) -> str:
    return orjson.dumps(value).decode()


def _build(cls: type[T], record: asyncpg.Record | None) -> T:
    """Make a domain record from the columns of `record` that `cls` has."""
    assert record is not None, "a query that always returns a row returned none"
    names = _field_names(cls)
    return cls(**{key: value for key, value in record.items() if key in names})


def _build_many(cls: type[T], records: list[asyncpg.Record]) -> list[T]:
    """`_build` for a page of rows. When the columns are exactly the fields of `cls`, in
    order (checked once per page), each row is passed positionally: on the hot path of
    claims, matching names row by row cost more than the rest of building them."""
    if records and tuple(records[0].keys()) == _field_order(cls):
        return [cls(*record) for record in records]
    return [_build(cls, record) for record in records]


_FIELD_ORDER: dict[type, tuple[str, ...]] = {}
_FIELD_NAMES: dict[type, frozenset[str]] = {}


def _field_names(cls: type) -> frozenset[str]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = frozenset(_field_order(cls))
    return names


def _field_order(cls: type) -> tuple[str, ...]:
    order = _FIELD_ORDER.get(cls)
    if order is None:
        order = _FIELD_ORDER[cls] = tuple(f.name for f in fields(cls))
    return order


class Store:
    """hookrelay's data, as domain records; wraps driver errors in hookrelay errors."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._sql = queries()

    @classmethod
    async def open(cls, database_url: str, max_size: int = 20) -> Store:
        """A store whose pool connects on first use, so that a process starts (and answers 503)
        while Postgres is down, and reconnects by itself when it is back."""
        pool = asyncpg.create_pool(
            database_url,
            min_size=0,
            max_size=max_size,
            init=_init_connection,
            reset=_reset_connection,
        )
        await pool  # with min_size 0 this opens no connection, so it cannot fail
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        try:
            async with self.pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as connection:
                yield connection
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(_CONFLICTS.get(exc.constraint_name or "", _CONFLICT)) from exc
        except asyncpg.ForeignKeyViolationError as exc:
            # What the row refers to was deleted meanwhile (an app, an endpoint).
            raise NotFound("a resource this refers to no longer exists") from exc
        except asyncpg.DataError as exc:
            # A value from the request that Postgres cannot take (a NUL character, say).
            raise BadRequest("a value in the request cannot be stored or searched for") from exc
        except _UNAVAILABLE as exc:
            raise DependencyUnavailable("the database is unreachable") from exc

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Connection]:
        async with self._connection() as connection, connection.transaction():
            yield connection

    async def ping(self) -> None:
        async with self._connection() as connection:
            await connection.fetchval(self._sql["ping"])

    # Apps and keys

    async def create_app(
        self, app_id: str, name: str, uid: str | None, key_hash: bytes, key_prefix: str
    ) -> App:
        """Create an app and its first key, together."""
        async with self._transaction() as connection:
            record = await connection.fetchrow(self._sql["insert_app"], app_id, name, uid)
            await connection.execute(
                self._sql["insert_app_key"], app_id, key_hash, key_prefix, "default"
            )
        return _build(App, record)

    async def create_app_key(
        self, app_id: str, key_hash: bytes, key_prefix: str, name: str
    ) -> AppKey:
        async with self._connection() as connection:
            record = await connection.fetchrow(
                self._sql["insert_app_key"], app_id, key_hash, key_prefix, name
            )
        return _build(AppKey, record)

    async def list_app_keys(self, app_id: str, after: str | None, limit: int) -> list[AppKey]:
        async with self._connection() as connection:
            records = await connection.fetch(self._sql["list_app_keys"], app_id, after, limit)
        return [_build(AppKey, r) for r in records]

    async def revoke_app_key(self, app_id: str, key_id: str) -> AppKey:
        async with self._connection() as connection:
            record = await connection.fetchrow(self._sql["revoke_app_key"], app_id, key_id)
        if record is None:
            raise NotFound("no such key")
        return _build(AppKey, record)

    async def get_app(self, ref: str) -> App:
        """One app by id or uid."""
        async with self._connection() as connection:
            record = await connection.fetchrow(self._sql["get_app"], ref)
        if record is None:
            raise NotFound("no such app")
        return _build(App, record)

    async def list_apps(self, after: str | None, limit: int) -> list[App]:
        async with self._connection() as connection:
            records = await connection.fetch(self._sql["list_apps"], after, limit)
        return [_build(App, r) for r in records]

    async def update_app(self, app_id: str, name: str, uid: str | None) -> App:
        async with self._connection() as connection:
            record = await connection.fetchrow(self._sql["update_app"], app_id, name, uid)
        if record is None:
            raise NotFound("no such app")
        return _build(App, record)

    async def delete_app(self, app_id: str) -> None:
        async with self._connection() as connection:
            if await connection.fetchval(self._sql["delete_app"], app_id) is None:
                raise NotFound("no such app")

    async def app_id_for_key(self, key_hash: bytes) -> str | None:
        async with self._connection() as connection:
            app_id: str | None = await connection.fetchval(self._sql["app_id_for_key"], key_hash)
        return app_id

    # Endpoints

    async def create_endpoint(self, endpoint: Endpoint) -> Endpoint:
        async with self._connection() as connection:
            record = await connection.fetchrow(
                self._sql["insert_endpoint"],
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
        return _build(Endpoint, record)

    async def get_endpoint(self, app_id: str, endpoint_id: str) -> Endpoint:
        async with self._connection() as connection:
            record = await connection.fetchrow(self._sql["get_endpoint"], app_id, endpoint_id)
        if record is None:
            raise NotFound("no such endpoint")
        return _build(Endpoint, record)

    async def list_endpoints(self, app_id: str, after: str | None, limit: int) -> list[Endpoint]:
        async with self._connection() as connection:
            records = await connection.fetch(self._sql["list_endpoints"], app_id, after, limit)
        return [_build(Endpoint, r) for r in records]

    async def update_endpoint(
        self, app_id: str, endpoint_id: str, change: Callable[[Endpoint], Endpoint]
    ) -> tuple[Endpoint, list[tuple[str, int]]]:
        """Apply `change` to the endpoint under a row lock; return it and the deliveries it
        released from hold (id, attempts made) when it became active."""
        async with self._transaction() as connection:
            record = await connection.fetchrow(self._sql["lock_endpoint"], app_id, endpoint_id)
            if record is None:
                raise NotFound("no such endpoint")
            before = _build(Endpoint, record)
            after = change(before)
            record = await connection.fetchrow(
                self._sql["update_endpoint"],
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
            if after.status == "active" and before.status != "active":
                rows = await connection.fetch(self._sql["release_held_deliveries"], endpoint_id)
                released = [(r["id"], r["attempt_count"]) for r in rows]
        return _build(Endpoint, record), released

    async def rotate_endpoint_secret(
        self,
        app_id: str,
        endpoint_id: str,
        ciphertext: bytes,
        key_id: str,
        public_key: str | None,
        grace_s: float,
    ) -> Endpoint:
        async with self._connection() as connection:
            record = await connection.fetchrow(
                self._sql["rotate_endpoint_secret"],
                app_id,
                endpoint_id,
                ciphertext,
                key_id,
                public_key,
                grace_s,
            )
        if record is None:
            raise NotFound("no such endpoint")
        return _build(Endpoint, record)

    async def delete_endpoint(self, app_id: str, endpoint_id: str) -> None:
        async with self._connection() as connection:
            found = await connection.fetchval(self._sql["delete_endpoint"], app_id, endpoint_id)
        if found is None:
            raise NotFound("no such endpoint")

    # Events

    async def insert_event(self, event: Event) -> list[str]:
        """Record an event and its deliveries atomically; return the ids of those due now."""
        async with self._connection() as connection:
            return await self._insert_events(connection, [event])

    async def insert_events_once(
        self, events: list[Event], idempotency: Idempotency | None, answer: Any
    ) -> tuple[Any, list[str]]:
        """Record events and their deliveries in one transaction, at most once per
        Idempotency-Key: a key seen before returns its first answer and records nothing (a
        different request under the same key is a Conflict). Returns the answer and the ids of
        the deliveries due now."""
        if idempotency is None:
            async with self._connection() as connection:
                return answer, await self._insert_events(connection, events)
        key = (events[0].app_id, idempotency.stored_key)
        while True:
            async with self._transaction() as connection:
                if await connection.fetchval(
                    self._sql["insert_idempotency_key"], *key, idempotency.request_hash
                ):
                    due = await self._insert_events(connection, events)
                    await connection.execute(
                        self._sql["save_idempotent_response"], *key, orjson.dumps(answer).decode()
                    )
                    return answer, due
                first = await connection.fetchrow(
                    self._sql["get_idempotency_key"], *key, idempotency.ttl_s
                )
                if first is None:
                    continue  # its request failed and rolled back meanwhile: try again
                if not first["live"]:
                    await connection.execute(self._sql["delete_idempotency_key"], *key)
                    continue
            if first["request_hash"] != idempotency.request_hash:
                raise Conflict(
                    "this Idempotency-Key was used with a different request",
                    {"idempotency_key": idempotency.key},
                )
            return orjson.loads(first["response"]), []

    async def _insert_events(self, connection: Connection, events: list[Event]) -> list[str]:
        ids: list[str] = await connection.fetchval(
            self._sql["insert_events_with_deliveries"],
            [e.id for e in events],
            events[0].app_id,
            [e.type for e in events],
            [e.job_id for e in events],
            [e.body for e in events],
            [e.created_at for e in events],
            [is_operational(e.type) for e in events],
        )
        return ids

    async def get_event(self, app_id: str, event_id: str) -> Event:
        async with self._connection() as connection:
            record = await connection.fetchrow(self._sql["get_event"], app_id, event_id)
        if record is None:
            raise NotFound("no such event")
        return _build(Event, record)

    async def list_events(
        self, app_id: str, filters: EventFilter, before: str | None, limit: int
    ) -> list[Event]:
        where, args = _where(
            3,
            ("ev.id < ${}", before),
            ("ev.type = ${}", filters.type),
            ("ev.job_id = ${}", filters.job_id),
            ("ev.id >= ${}", _bound("evt_", filters.since)),
            ("ev.id < ${}", _bound("evt_", filters.until)),
        )
        async with self._connection() as connection:
            records = await connection.fetch(
                self._sql["list_events"].replace("{filters}", where), app_id, limit, *args
            )
        return [_build(Event, r) for r in records]

    # The event log in commit order (streams, long-polls, job status)

    async def read_log(
        self, app_id: str, after: LogPosition, filters: LogFilter, limit: int
    ) -> LogRead:
        """Up to `limit` events after `after` in commit order. The position returned covers
        every matching event before it, so reading on from it never skips one."""
        where, args = _where(
            6,
            ("ev.type = ANY(${}::text[])", None if filters.types is None else list(filters.types)),
            ("ev.job_id = ${}", filters.job_id),
        )
        async with self._connection() as connection:
            records = await connection.fetch(
                self._sql["read_log"].replace("{filters}", where),
                app_id,
                *after,
                limit,
                READ_LOG_BYTES,
                *args,
            )
        events = [_build(Event, r) for r in records if r["id"] is not None]
        # A page full by count or by bytes: more may follow. Otherwise every match older than
        # the horizon has been read.
        full = bool(events) and (len(events) == limit or len(events) < records[0]["rows_read"])
        position = events[-1].position if full else max(after, (records[0]["horizon"], ""))
        return LogRead(events, position, records[0]["held_back"], more=full)

    async def log_horizon(self) -> LogPosition:
        """The position before every event not yet readable: "now" in the log."""
        async with self._connection() as connection:
            return (await connection.fetchval(self._sql["log_horizon"]), "")

    async def log_position(self, app_id: str, event_id: str) -> LogPosition:
        """Where a reader that has seen `event_id` goes on from: just after it, or, if a
        transaction older than it is still open, before that transaction's events (a reader
        never passes what may still commit). An event older than every one kept (pruned) means
        the start; an id this app never had is NotFound."""
        async with self._connection() as connection:
            record = await connection.fetchrow(self._sql["event_log_position"], app_id, event_id)
        assert record is not None
        if record["id"] is not None:
            return min((record["tx_id"], record["id"]), (record["horizon"], ""))
        if record["oldest_id"] is None or event_id < record["oldest_id"]:
            return LOG_START
        raise NotFound("no such event in this app's log")

    async def job_log_start(self, app_id: str, job_id: str) -> LogPosition:
        """The position just before a job's first event (or "now" for a job with none yet)."""
        async with self._connection() as connection:
            tx_id = await connection.fetchval(self._sql["job_log_start"], app_id, job_id)
        return (tx_id, "")

    async def job_events(
        self, app_id: str, job_id: str, after: LogPosition, limit: int
    ) -> list[Event]:
        """A job's events in commit order, after `after`."""
        async with self._connection() as connection:
            records = await connection.fetch(self._sql["job_events"], app_id, job_id, *after, limit)
        return [_build(Event, r) for r in records]

    async def list_event_deliveries(self, event_id: str) -> list[Delivery]:
        async with self._connection() as connection:
            records = await connection.fetch(self._sql["list_event_deliveries"], event_id)
        return [_build(Delivery, r) for r in records]

    # Deliveries

    async def claim_deliveries(
        self, delivery_ids: list[str], lease_s: float
    ) -> list[ClaimedDelivery]:
        """Take the lease on those deliveries that are due and not held by anyone else."""
        async with self._connection() as connection:
            records = await connection.fetch(self._sql["claim_deliveries"], delivery_ids, lease_s)
        return _build_many(ClaimedDelivery, records)

    async def release_delivery(self, delivery_id: str, attempt: int, delay_s: float) -> bool:
        """Undo a claim without using up the attempt; due again after `delay_s`."""
        async with self._connection() as connection:
            found = await connection.fetchval(
                self._sql["release_delivery"], delivery_id, attempt, delay_s
            )
        return found is not None

    async def record_successes(self, outcomes: list[AttemptOutcome]) -> set[str]:
        """Record first attempts that succeeded, in one statement; return the ids recorded (a
        delivery whose lease was lost meanwhile is not)."""
        try:
            async with self._connection() as connection:
                ids: list[str] = await connection.fetchval(
                    self._sql["record_successes"],
                    [o.delivery_id for o in outcomes],
                    [o.attempt_number for o in outcomes],
                    [o.started_at for o in outcomes],
                    [o.duration_ms for o in outcomes],
                    [o.status_code for o in outcomes],
                    [o.response_headers for o in outcomes],
                    [o.response_body for o in outcomes],
                )
        except NotFound:  # (a foreign key violation, mapped by _connection)
            if len(outcomes) == 1:
                return set()  # its endpoint was deleted during the attempt: the lease is void
            # One endpoint was deleted meanwhile: record the others one by one.
            recorded: set[str] = set()
            for outcome in outcomes:
                recorded |= await self.record_successes([outcome])
            return recorded
        return set(ids)

    async def record_attempt(
        self,
        outcome: AttemptOutcome,
        policy: HealthPolicy,
        follow_up: Callable[[RecordedAttempt], list[Event]] | None,
    ) -> tuple[RecordedAttempt | None, list[str]]:
        """Record an attempt, the delivery's next state and the endpoint's health; in the same
        transaction, record the events `follow_up` derives from that (operational events).
        Without `follow_up` it is one statement and no transaction.

        Returns None if the lease was lost (or the endpoint deleted meanwhile), and the ids of
        the deliveries now due.
        """
        args = (
            outcome.delivery_id,
            outcome.attempt_number,
            outcome.started_at,
            outcome.duration_ms,
            outcome.status_code,
            outcome.error_kind,
            outcome.error_message,
            outcome.response_headers,
            outcome.response_body,
            outcome.next_status,
            outcome.next_attempt_at,
            outcome.next_status == "succeeded",
            outcome.disable_endpoint,
            policy.disable_after_dead,
            policy.disable_after_failing_s,
        )
        scope = self._connection() if follow_up is None else self._transaction()
        try:
            async with scope as connection:
                record = await connection.fetchrow(self._sql["record_attempt"], *args)
                if record is None:
                    return None, []
                recorded = RecordedAttempt(record["status"], record["disabled_reason"])
                due: list[str] = []
                events = follow_up(recorded) if follow_up is not None else []
                if events:
                    due = await self._insert_events(connection, events)
        except NotFound:  # (a foreign key violation, mapped by _connection)
            return None, []  # the endpoint (and its deliveries) was deleted during the attempt
        return recorded, due

    # The sweeper

    async def sweep(
        self, interval_s: float, grace_s: float, limit: int, after: SweepCursor
    ) -> Sweep | None:
        """Find what may have lost its job: overdue deliveries (one page, after `after`), expired
        leases, and held deliveries of active endpoints (those are made due). None if another
        worker's sweep is recent."""
        async with self._transaction() as connection:
            if await connection.fetchval(self._sql["take_sweep_turn"], interval_s) is None:
                return None
            due = await connection.fetch(self._sql["due_deliveries"], grace_s, *after, limit)
            expired = await connection.fetch(self._sql["expired_leases"], limit)
            released = await connection.fetch(self._sql["release_stale_holds"], limit)
        cursor = (due[-1]["next_attempt_at"], due[-1]["id"]) if len(due) == limit else None
        return Sweep(
            overdue=[(r["id"], r["attempt_count"], r["next_attempt_at"]) for r in due],
            jobless=[(r["id"], r["attempt_count"]) for r in (*expired, *released)],
            next_cursor=cursor or SWEEP_START,
        )

    # Retention

    async def take_retention_turn(self, interval_s: float) -> bool:
        """True if no pruning pass began within `interval_s` (this caller's pass begins)."""
        async with self._connection() as connection:
            return (
                await connection.fetchval(self._sql["take_retention_turn"], interval_s) is not None
            )

    async def prune_events(self, before_id: str, limit: int) -> int:
        """Delete up to `limit` events with ids below `before_id`, with their deliveries and
        attempts; return how many events went."""
        async with self._connection() as connection:
            status = await connection.execute(self._sql["prune_events"], before_id, limit)
        return int(status.split()[-1])

    async def prune_idempotency_keys(self, older_than_s: float, limit: int) -> int:
        async with self._connection() as connection:
            status = await connection.execute(
                self._sql["prune_idempotency_keys"], older_than_s, limit
            )
        return int(status.split()[-1])

    # Encryption keys

    async def endpoints_sealed_with_other_keys(self, key_id: str, limit: int) -> list[Sealed]:
        async with self._connection() as connection:
            records = await connection.fetch(
                self._sql["endpoints_sealed_with_other_keys"], key_id, limit
            )
        return [_build(Sealed, r) for r in records]

    async def reseal_endpoint_secrets(self, before: Sealed, after: Sealed) -> bool:
        """Replace an endpoint's ciphertexts; False if they changed since `before` was read."""
        async with self._connection() as connection:
            found = await connection.fetchval(
                self._sql["reseal_endpoint_secrets"],
                after.id,
                after.secret_ciphertext,
                after.secret_key_id,
                after.previous_secret_ciphertext,
                after.previous_secret_key_id,
                before.secret_ciphertext,
            )
        return found is not None

    async def oldest_due_age(self) -> float | None:
        """Seconds the oldest due delivery has waited; None if nothing is due."""
        async with self._connection() as connection:
            age: float | None = await connection.fetchval(self._sql["oldest_due_age"])
        return age

    async def get_delivery(self, app_id: str, delivery_id: str) -> Delivery:
        async with self._connection() as connection:
            record = await connection.fetchrow(self._sql["get_delivery"], app_id, delivery_id)
        if record is None:
            raise NotFound("no such delivery")
        return _build(Delivery, record)

    async def list_deliveries(
        self, app_id: str, filters: DeliveryFilter, before: str | None, limit: int
    ) -> list[Delivery]:
        where, args = _delivery_where(filters, before)
        async with self._connection() as connection:
            records = await connection.fetch(
                self._sql["list_deliveries"].replace("{filters}", where), app_id, limit, *args
            )
        return [_build(Delivery, r) for r in records]

    async def count_deliveries(
        self, app_id: str, filters: DeliveryFilter, include_replayed: bool
    ) -> ReplayResult:
        """How many originals a bulk replay matches (with `include_replayed`, also those a
        replay recovered or is replaying), and how many of them it would send."""
        where, args = _delivery_where(filters, None, first=2)
        sql = _replay_sql(self._sql["count_deliveries"], where, include_replayed)
        async with self._connection() as connection:
            record = await connection.fetchrow(sql, app_id, *args)
        assert record is not None
        return ReplayResult(record["matched"], 0, record["replayable"])

    async def replay_batch(
        self,
        app_id: str,
        filters: DeliveryFilter,
        include_replayed: bool,
        before: str | None,
        limit: int,
    ) -> tuple[str | None, int, list[str]]:
        """Replay the next batch (newest first, from `before`) of the originals that
        count_deliveries matches, as new deliveries, while no other bulk replay of the app is
        in a batch; return the cursor for the next batch (None when done), how many were
        replayed, and the new deliveries due now."""
        where, args = _delivery_where(filters, before, first=3)
        sql = _replay_sql(self._sql["replay_deliveries"], where, include_replayed)
        async with self._transaction() as connection:
            await connection.execute(self._sql["lock_app_replays"], app_id)
            record = await connection.fetchrow(sql, app_id, limit, *args)
        assert record is not None
        done = record["replayed"] < limit
        return (None if done else record["last_id"]), record["replayed"], record["due"]

    async def replay_delivery(self, app_id: str, delivery_id: str) -> tuple[str, str, str]:
        """A new delivery of the same event to the same endpoint; (its id, its status, the
        original it is a replay of)."""
        async with self._connection() as connection:
            record = await connection.fetchrow(self._sql["replay_delivery"], app_id, delivery_id)
        if record is None:
            raise NotFound("no such delivery")
        return record["id"], record["status"], record["replay_of"]

    async def list_attempts(
        self, app_id: str, filters: AttemptFilter, before: str | None, limit: int
    ) -> list[Attempt]:
        where, args = _where(
            3,
            ("a.id < ${}", before),
            ("a.delivery_id = ${}", filters.delivery_id),
            ("d.endpoint_id = ${}", filters.endpoint_id),
            ("a.id >= ${}", _bound("att_", filters.since)),
            ("a.id < ${}", _bound("att_", filters.until)),
        )
        async with self._connection() as connection:
            records = await connection.fetch(
                self._sql["list_attempts"].replace("{filters}", where), app_id, limit, *args
            )
        return [_build(Attempt, r) for r in records]

    async def delivery_attempts(self, delivery_id: str) -> list[Attempt]:
        async with self._connection() as connection:
            records = await connection.fetch(self._sql["delivery_attempts"], delivery_id)
        return [_build(Attempt, r) for r in records]


def _where(first: int, *conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """AND-clauses for the conditions whose value is given, numbering parameters from
    `first`: each distinct combination is its own prepared statement with its own plan."""
    clauses, args = [], []
    for template, value in conditions:
        if value is not None:
            args.append(value)
            clauses.append(" AND " + template.format(first + len(args) - 1))
    return "".join(clauses), args


def _delivery_where(
    filters: DeliveryFilter, before: str | None, first: int = 3
) -> tuple[str, list[Any]]:
    where, args = _where(
        first,
        ("d.id < ${}", before),
        ("d.endpoint_id = ${}", filters.endpoint_id),
        ("d.event_id = ${}", filters.event_id),
        ("ev.type = ${}", filters.event_type),
        ("ev.job_id = ${}", filters.job_id),
        ("d.id >= ${}", _bound("dlv_", filters.since)),
        ("d.id < ${}", _bound("dlv_", filters.until)),
    )
    if filters.status is not None:
        # A literal, not a parameter: a plan made for a parameter cannot use the partial
        # index on the statuses people list (its predicate names them). Only known statuses.
        if filters.status not in DELIVERY_STATUSES:
            raise BadRequest(f"unknown delivery status {filters.status!r}")
        where += f" AND d.status = '{filters.status}'"
    return where, args


def _replay_sql(sql: str, where: str, include_replayed: bool) -> str:
    """A bulk replay's query with its filters and, as a literal, whether it includes originals
    recovered or being replayed (a plan made for a parameter could not use the indexes of the
    deliveries still lost)."""
    return sql.replace("{filters}", where).replace(
        "{include_replayed}", "true" if include_replayed else "false"
    )


DELIVERY_STATUSES = frozenset(
    {"pending", "sending", "retrying", "succeeded", "dead", "held", "cancelled"}
)


def _bound(prefix: str, moment: datetime | None) -> str | None:
    return None if moment is None else id_bound(prefix, round(moment.timestamp() * 1000))
