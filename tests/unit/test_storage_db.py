"""The database base without a database: driver errors translated by the violated constraint's
name, named queries built into records, over a fake pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from hookrelay.errors import BadRequest, Conflict, Contention, DependencyUnavailable, NotFound
from hookrelay.models import App
from hookrelay.storage.db import (
    CONSTRAINT_ERRORS,
    Database,
    build_many,
    domain_error,
)


def postgres_error(
    sqlstate: str, constraint: str | None = None, message: str = "refused"
) -> asyncpg.PostgresError:
    """The error asyncpg raises for an answer with this SQLSTATE (and constraint name)."""
    fields = {"C": sqlstate, "M": message}
    if constraint is not None:
        fields["n"] = constraint
    return asyncpg.PostgresError.new(fields)


UNIQUE, FOREIGN_KEY, CHECK = "23505", "23503", "23514"


# domain_error: by the constraint's name first, then by the kind of violation


def test_a_taken_uid_is_a_conflict_that_says_so() -> None:
    error = domain_error(postgres_error(UNIQUE, "apps_uid_key"))
    assert isinstance(error, Conflict)
    assert error.message == "an app with this uid already exists; pick another uid"


def test_another_unique_violation_is_a_conflict() -> None:
    error = domain_error(postgres_error(UNIQUE, "app_keys_key_hash_key"))
    assert isinstance(error, Conflict)
    assert error.message == "a resource with that identity already exists"


def test_a_foreign_key_violation_is_not_found() -> None:
    error = domain_error(postgres_error(FOREIGN_KEY, "deliveries_endpoint_id_fkey"))
    assert isinstance(error, NotFound)
    assert error.message == "a resource this refers to no longer exists"


def test_a_violation_without_a_constraint_name_takes_its_kinds_error() -> None:
    assert isinstance(domain_error(postgres_error(UNIQUE)), Conflict)


@pytest.mark.parametrize("constraint", sorted(CONSTRAINT_ERRORS))
def test_a_named_constraint_is_reported_as_its_table_entry_says(constraint: str) -> None:
    kind, message = CONSTRAINT_ERRORS[constraint]
    error = domain_error(postgres_error(UNIQUE, constraint))
    assert type(error) is kind
    assert error.message == message


def test_a_check_violation_not_named_is_no_domain_error() -> None:
    # A CHECK the API let through is a bug: it stays a 500, not a client error.
    assert domain_error(postgres_error(CHECK, "deliveries_status_check")) is None


def test_a_row_no_partition_holds_yet_means_the_database_is_not_ready() -> None:
    # Postgres's words when the log has no partition for a row's time (no worker made it).
    missing = 'no partition of relation "events" found for row'
    error = domain_error(postgres_error(CHECK, message=missing))
    assert isinstance(error, DependencyUnavailable)
    assert "no partition" in error.message


def test_a_value_postgres_cannot_take_is_a_bad_request() -> None:
    error = domain_error(postgres_error("22021"))  # invalid byte sequence (a NUL, say)
    assert isinstance(error, BadRequest)


@pytest.mark.parametrize(
    "exc",
    [
        OSError("connection refused"),
        TimeoutError(),
        postgres_error("57P03"),  # the database system is starting up
        postgres_error("53300"),  # too many connections
        asyncpg.InterfaceError("the connection is closed"),
        asyncpg.exceptions.InternalClientError(
            "cannot switch to state 12; another operation (2) is in progress"
        ),
    ],
    ids=repr,
)
def test_an_unreachable_database_is_unavailable(exc: BaseException) -> None:
    assert isinstance(domain_error(exc), DependencyUnavailable)


@pytest.mark.parametrize("exc", [ValueError("bug"), postgres_error("42601")], ids=repr)
def test_other_errors_are_no_domain_errors(exc: BaseException) -> None:
    assert domain_error(exc) is None


# A lost deadlock: the one driver error that means "try the same work again"


def test_a_lost_deadlock_is_contention_which_may_be_tried_again() -> None:
    error = domain_error(postgres_error("40P01"))  # deadlock detected
    assert isinstance(error, Contention)
    assert isinstance(error, DependencyUnavailable)  # retried and answered as a passing failure


# Database over a fake pool


class FakeConnection:
    """Answers every query with `rows`, or raises `error`; remembers what it was asked."""

    def __init__(self, rows: list[dict[str, Any]], error: BaseException | None = None) -> None:
        self.rows = rows
        self.error = error
        self.asked: list[tuple[str, tuple[Any, ...]]] = []

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        self.asked.append((sql, args))
        if self.error is not None:
            raise self.error
        return self.rows

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, Any] | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def execute(self, sql: str, *args: Any) -> str:
        await self.fetch(sql, *args)
        return str(self.rows[0]["status"])


class FakePool:
    def __init__(self, connection: FakeConnection) -> None:
        self.connection = connection

    @asynccontextmanager
    async def acquire(self, **_: Any) -> AsyncIterator[FakeConnection]:
        yield self.connection


class FakeRecord(dict[str, Any]):
    """What asyncpg's records offer `build`: items by name, and columns in order."""


NOW = datetime(2026, 1, 1, tzinfo=UTC)
APP_ROW = FakeRecord(id="app_1", name="acme", uid=None, created_at=NOW, updated_at=NOW)


def database(connection: FakeConnection) -> Database:
    pool: Any = FakePool(connection)
    return Database(pool, pool, pool)


async def test_one_builds_the_record_of_the_named_query() -> None:
    connection = FakeConnection([APP_ROW])
    app = await database(connection).one(App, "get_app", "app_1", missing="no such app")
    assert app == App("app_1", "acme", None, NOW, NOW)
    [(sql, args)] = connection.asked
    assert sql.startswith("SELECT") and "FROM apps" in sql
    assert args == ("app_1",)


async def test_one_without_a_row_is_not_found_with_its_message() -> None:
    with pytest.raises(NotFound, match="no such app"):
        await database(FakeConnection([])).one(App, "get_app", "app_9", missing="no such app")


async def test_a_driver_error_comes_out_as_the_domain_error_it_means_chained() -> None:
    violation = postgres_error(UNIQUE, "apps_uid_key")
    with pytest.raises(Conflict, match="uid already exists") as raised:
        await database(FakeConnection([], violation)).one(App, "update_app", "app_1", "a", "x")
    assert raised.value.__cause__ is violation


async def test_an_error_that_means_nothing_to_the_domain_passes_unchanged() -> None:
    syntax = postgres_error("42601")
    with pytest.raises(asyncpg.PostgresSyntaxError) as raised:
        await database(FakeConnection([], syntax)).all(App, "list_apps", None, 10)
    assert raised.value is syntax


@pytest.mark.parametrize(("status", "count"), [("DELETE 7", 7), ("UPDATE 0", 0), ("ANALYZE", 0)])
async def test_execute_says_how_many_rows_changed(status: str, count: int) -> None:
    connection = FakeConnection([{"status": status}])
    assert await database(connection).execute("prune_idempotency_keys", 86400, 100) == count


def test_rows_whose_columns_are_the_fields_in_order_are_built_positionally() -> None:
    class Positional(tuple[Any, ...]):
        def keys(self) -> tuple[str, ...]:
            return ("id", "name", "uid", "created_at", "updated_at")

    row: Any = Positional(("app_1", "acme", None, NOW, NOW))
    assert build_many(App, [row]) == [App("app_1", "acme", None, NOW, NOW)]


def test_rows_with_other_columns_are_built_by_name() -> None:
    row: Any = FakeRecord(extra=1, **APP_ROW)
    assert build_many(App, [row]) == [App("app_1", "acme", None, NOW, NOW)]
