"""The database base: the pool, named queries run into domain records, driver errors translated.

The aggregates of this package run their named queries (`sql/queries/`) through a `Database` or,
inside a transaction, a `Session`; nothing outside `hookrelay/storage/` sees asyncpg.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import fields
from typing import Any, TypeVar

import asyncpg
import orjson

from hookrelay.errors import (
    BadRequest,
    Conflict,
    Contention,
    DependencyUnavailable,
    HookrelayError,
    NotFound,
)
from hookrelay.storage.sql import queries

T = TypeVar("T")
Row = asyncpg.Record
Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

# A query waits at most this long for a free connection before the caller is told the database
# is unavailable.
ACQUIRE_TIMEOUT_S = 10.0
# Connections at most for the reads planned per call (listings, replays' counts: what people
# and scripts ask for, not the delivery path).
CUSTOM_PLAN_POOL_SIZE = 5
# The setting of connections that plan every statement for its call's arguments.
PLAN_EACH_CALL = {"plan_cache_mode": "force_custom_plan"}
# An impatient session's statements wait at most this long for a lock, then fail (Contention):
# the group commit's (storage/events.py), so that a lock held on one app (its deletion under
# way) holds up the other apps' requests in a group for no longer. A setting of the connection,
# so that a single statement needs no transaction around it to carry it.
IMPATIENT_LOCK_WAIT_S = 0.25
IMPATIENT = {"lock_timeout": f"{round(IMPATIENT_LOCK_WAIT_S * 1000)}ms"}
# Connections at most for impatient sessions (one group is written at a time per process).
IMPATIENT_POOL_SIZE = 2

# What the violation of a constraint means to the caller, by the constraint's name (Postgres's
# default names for the constraints of sql/migrations/). A constraint not named here is reported
# as its kind says, below.
CONSTRAINT_ERRORS: dict[str, tuple[type[HookrelayError], str]] = {
    "apps_uid_key": (Conflict, "an app with this uid already exists; pick another uid"),
}
UNIQUE_VIOLATION = (Conflict, "a resource with that identity already exists")
# What the row refers to was deleted meanwhile (an app, an endpoint).
FOREIGN_KEY_VIOLATION = (NotFound, "a resource this refers to no longer exists")
# A value from the request that Postgres cannot take (a NUL character, say).
DATA_ERROR = (BadRequest, "a value in the request cannot be stored or searched for")
UNAVAILABLE = (DependencyUnavailable, "the database is unreachable")
# Postgres ended this transaction to break a deadlock with another, or it waited for a lock
# longer than it was allowed to: it may be tried again.
CONTENTION = (Contention, "a concurrent change got in the way; try again")
# A row of the event log whose time no partition holds yet: the worker makes them ahead of need.
NO_PARTITION = (
    DependencyUnavailable,
    "the event log has no partition for this time yet; is a worker running?",
)

# Errors that mean "Postgres is not reachable right now", not "this request is wrong".
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # Shutting down, starting up, crashed: Postgres is there but will not serve.
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.TooManyConnectionsError,
    # A call on a connection that asyncpg still sees busy with one that Postgres's shutdown cut
    # off: refused before anything is sent ("cannot switch to state 12; another operation (2)
    # is in progress", seen at ingest while Postgres was stopping, on a loaded machine).
    asyncpg.exceptions.InternalClientError,
)


def domain_error(exc: BaseException) -> HookrelayError | None:
    """The hookrelay error a driver error means; None for one that means none (a bug)."""
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        known = CONSTRAINT_ERRORS.get(exc.constraint_name or "")
        if known is not None:
            kind, message = known
        elif isinstance(exc, asyncpg.UniqueViolationError):
            kind, message = UNIQUE_VIOLATION
        elif isinstance(exc, asyncpg.ForeignKeyViolationError):
            kind, message = FOREIGN_KEY_VIOLATION
        elif isinstance(exc, asyncpg.CheckViolationError) and exc.constraint_name is None:
            # A CHECK always names its constraint; a row no partition takes has none (and the
            # message is in the server's language, so it is not read).
            kind, message = NO_PARTITION
        else:
            return None
    elif isinstance(exc, asyncpg.DataError):
        kind, message = DATA_ERROR
    elif isinstance(exc, asyncpg.DeadlockDetectedError | asyncpg.LockNotAvailableError):
        kind, message = CONTENTION
    elif isinstance(exc, _UNAVAILABLE):
        kind, message = UNAVAILABLE
    else:
        return None
    return kind(message)


class Session:
    """One connection, running named queries; what one aggregate's transaction works with."""

    def __init__(self, connection: Connection, sql: dict[str, str]) -> None:
        self._connection = connection
        self._sql = sql

    def transaction(self) -> asyncpg.transaction.Transaction:
        """A transaction of this session's connection, as an async context."""
        return self._connection.transaction()

    async def one(self, cls: type[T], query: str, *args: Any, missing: str | None = None) -> T:
        """The row of `query` as a `cls`. No row is NotFound(`missing`); without `missing`,
        the query always returns a row."""
        record = await self.row(query, *args)
        if record is None:
            if missing is None:
                raise AssertionError(f"query {query} returned no row")
            raise NotFound(missing)
        return build(cls, record)

    async def all(self, cls: type[T], query: str, *args: Any) -> list[T]:
        """The rows of `query`, each as a `cls`."""
        return build_many(cls, await self.rows(query, *args))

    async def row(self, query: str, *args: Any, custom_plan: bool = False) -> Row | None:
        """The first row of `query`, or None. With `custom_plan` the statement is prepared
        anew for this call (asyncpg names it and closes it later), and Postgres plans a
        statement's first executions for their arguments (see Database), at one more round
        trip."""
        if custom_plan:
            return await (await self._connection.prepare(self._sql[query])).fetchrow(*args)
        return await self._connection.fetchrow(self._sql[query], *args)

    async def rows(self, query: str, *args: Any) -> list[Row]:
        """The rows of `query`."""
        return await self._connection.fetch(self._sql[query], *args)

    async def value(self, query: str, *args: Any) -> Any:
        """The first column of the first row of `query` (None without a row)."""
        return await self._connection.fetchval(self._sql[query], *args)

    async def run(self, statement: str) -> None:
        """Run a statement that is not a named query: a change to the schema whose names and
        bounds the caller made itself (partitions.py), never from anything a request holds."""
        await self._connection.execute(statement)

    async def execute(self, query: str, *args: Any) -> int:
        """Run `query`; return how many rows it changed (0 for a command that does not say)."""
        status: str = await self._connection.execute(self._sql[query], *args)
        count = status.rsplit(" ", 1)[-1]
        return int(count) if count.isdigit() else 0

    async def copy(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """Copy rows into `table` (COPY, the fastest way in for many rows; for bulk loads)."""
        await self._connection.copy_records_to_table(table, records=rows, columns=columns)


class Database:
    """Pools of connections to hookrelay's database, and its named queries.

    A statement is prepared once per connection (asyncpg's cache), and Postgres may then keep
    one plan for all its calls: the API's ingest cannot afford planning each time. The
    filtered listings and bulk replays take each filter as a parameter that may be null, and a
    plan for any value would use none of the partial indexes they need, nor drop the
    conditions of the filters left out: they are asked with `custom_plan`, and planned for
    each call's arguments, two ways by cost. A read runs on a second small pool whose
    connections plan every statement per call (plan_cache_mode), which costs the planning only.
    Inside a transaction (the batch of a bulk replay) the statement is prepared anew, for this
    call alone, on the transaction's connection, at one more round trip (about 0.4 ms): on the
    planning pool, the foreign key checks of each row the batch writes would be planned anew too,
    which made bulk replays twice as slow.

    With `plan_each_call` (the worker's) every connection plans every statement per call. The
    delivery path's statements name the log's rows by id, and Postgres plans them per call
    anyway: a plan for any ids covers every partition and costs more than one for the
    partitions the ids are in. In its default mode it still builds that plan, to compare, once
    per connection and statement and again after each change to the log's tables (a partition
    made, an analyze): 20 to 40 ms each time at 52 partitions. Their writes fire no foreign key
    check, whose plans would be made per call too. A sweep, whose statements read every
    partition whatever their arguments, asks for one plan kept per connection in its
    transaction (`plan_once_per_connection`).
    """

    def __init__(
        self, pool: asyncpg.Pool, custom_plan_pool: asyncpg.Pool, impatient_pool: asyncpg.Pool
    ) -> None:
        self.pool = pool
        self.custom_plan_pool = custom_plan_pool
        self.impatient_pool = impatient_pool
        self._sql = queries()

    @classmethod
    async def open(
        cls,
        database_url: str,
        max_size: int = 20,
        retention_s: float | None = None,
        plan_each_call: bool = False,
    ) -> Database:
        """Pools that connect on first use, so that a process starts (and answers 503) while
        Postgres is down, and reconnects by itself when it is back. With `retention_s`, reads
        of the log never return rows older than that (kept_since, sql/migrations/0012); with
        `plan_each_call`, one pool whose connections plan every statement per call."""
        kept = {} if retention_s is None else {"hookrelay.retention_s": repr(float(retention_s))}

        def pool(size: int, settings: dict[str, str]) -> asyncpg.Pool:
            return asyncpg.create_pool(
                database_url,
                min_size=0,
                max_size=size,
                init=_init_connection,
                reset=_reset_connection,
                server_settings=kept | settings,
            )

        # With min_size 0 this opens no connection, so it cannot fail.
        impatient = await pool(IMPATIENT_POOL_SIZE, IMPATIENT)
        if plan_each_call:
            planning = await pool(max_size, PLAN_EACH_CALL)
            return cls(planning, planning, impatient)
        planning_size = min(max_size, CUSTOM_PLAN_POOL_SIZE)
        return cls(await pool(max_size, {}), await pool(planning_size, PLAN_EACH_CALL), impatient)

    async def close(self) -> None:
        await self.pool.close()
        if self.custom_plan_pool is not self.pool:
            await self.custom_plan_pool.close()
        await self.impatient_pool.close()

    @asynccontextmanager
    async def session(
        self, custom_plan: bool = False, impatient: bool = False
    ) -> AsyncIterator[Session]:
        """A connection (with `custom_plan`, one that plans each statement per call; with
        `impatient`, one whose statements wait at most IMPATIENT_LOCK_WAIT_S for a lock); driver
        errors raised meanwhile come out as hookrelay's."""
        assert not (custom_plan and impatient), "a session is one or the other"
        pool = self.pool
        if impatient:
            pool = self.impatient_pool
        elif custom_plan:
            pool = self.custom_plan_pool
        try:
            async with pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as connection:
                yield Session(connection, self._sql)
        except Exception as exc:
            error = domain_error(exc)
            if error is None:
                raise
            raise error from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        """A session whose queries commit together, or not at all."""
        async with self.session() as session, session.transaction():
            yield session

    async def one(self, cls: type[T], query: str, *args: Any, missing: str | None = None) -> T:
        """`Session.one` on a connection of its own."""
        async with self.session() as session:
            return await session.one(cls, query, *args, missing=missing)

    async def all(self, cls: type[T], query: str, *args: Any, custom_plan: bool = False) -> list[T]:
        """`Session.all` on a connection of its own."""
        async with self.session(custom_plan) as session:
            return await session.all(cls, query, *args)

    async def row(self, query: str, *args: Any, custom_plan: bool = False) -> Row | None:
        """`Session.row` on a connection of its own."""
        async with self.session(custom_plan) as session:
            return await session.row(query, *args)

    async def rows(self, query: str, *args: Any, custom_plan: bool = False) -> list[Row]:
        """`Session.rows` on a connection of its own."""
        async with self.session(custom_plan) as session:
            return await session.rows(query, *args)

    async def value(self, query: str, *args: Any) -> Any:
        """`Session.value` on a connection of its own."""
        async with self.session() as session:
            return await session.value(query, *args)

    async def execute(self, query: str, *args: Any) -> int:
        """`Session.execute` on a connection of its own."""
        async with self.session() as session:
            return await session.execute(query, *args)


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


def build(cls: type[T], record: Row) -> T:
    """Make a domain record from the columns of `record` that `cls` has."""
    names = _field_names(cls)
    return cls(**{key: value for key, value in record.items() if key in names})


def build_many(cls: type[T], records: list[Row]) -> list[T]:
    """`build` for a page of rows. When the columns are exactly the fields of `cls`, in order
    (checked once per page), each row is passed positionally: on the hot path of claims,
    matching names row by row cost more than the rest of building them."""
    if records and tuple(records[0].keys()) == field_order(cls):
        return [cls(*record) for record in records]
    return [build(cls, record) for record in records]


_FIELD_ORDER: dict[type, tuple[str, ...]] = {}
_FIELD_NAMES: dict[type, frozenset[str]] = {}


def _field_names(cls: type) -> frozenset[str]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = frozenset(field_order(cls))
    return names


def field_order(cls: type) -> tuple[str, ...]:
    """The names of a dataclass's fields, in order."""
    order = _FIELD_ORDER.get(cls)
    if order is None:
        order = _FIELD_ORDER[cls] = tuple(f.name for f in fields(cls))
    return order
