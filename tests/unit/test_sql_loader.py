"""The loader of named queries (`sql/queries/`) and numbered migrations (`sql/migrations/`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hookrelay.storage.sql import (
    Migration,
    merge_queries,
    migrations,
    parse_migrations,
    parse_queries,
    queries,
    query_files,
)

TWO_QUERIES = """\
-- Named queries: a preamble that is not a query.

-- ping --
-- Check that the database answers.
SELECT 1;

-- get_app --
-- One app by its id.
SELECT id, name
FROM apps
WHERE id = $1;
"""


# parse_queries


def test_parse_queries_splits_named_queries() -> None:
    assert parse_queries(TWO_QUERIES) == {
        "ping": "SELECT 1;",
        "get_app": "SELECT id, name\nFROM apps\nWHERE id = $1;",
    }


def test_parse_queries_drops_the_description_line() -> None:
    assert "Check that" not in parse_queries(TWO_QUERIES)["ping"]


def test_parse_queries_of_a_text_without_headers_is_empty() -> None:
    assert parse_queries("-- only a comment\n") == {}


def test_query_without_a_description_raises() -> None:
    with pytest.raises(ValueError, match="'ping' needs a one-line description"):
        parse_queries("-- ping --\nSELECT 1;\n")


def test_query_with_nothing_under_its_name_raises() -> None:
    with pytest.raises(ValueError, match="'ping' needs a one-line description"):
        parse_queries("-- ping --\n\n-- other --\n-- Another.\nSELECT 2;\n")


def test_duplicate_query_names_raise() -> None:
    text = "-- ping --\n-- First.\nSELECT 1;\n\n-- ping --\n-- Second.\nSELECT 2;\n"
    with pytest.raises(ValueError, match="'ping' is defined twice"):
        parse_queries(text)


def test_query_without_sql_raises() -> None:
    with pytest.raises(ValueError, match="'ping' has no SQL"):
        parse_queries("-- ping --\n-- Check that the database answers.\n\n")


def test_header_must_stand_alone_on_its_line() -> None:
    text = "-- ping -- extra\n-- Check.\nSELECT 1;\n"
    assert parse_queries(text) == {}


# merge_queries


def test_merge_queries_puts_every_file_in_one_namespace() -> None:
    merged = merge_queries({"apps": {"get_app": "SELECT 1;"}, "events": {"get_event": "SELECT 2;"}})
    assert merged == {"get_app": "SELECT 1;", "get_event": "SELECT 2;"}


def test_a_query_name_used_in_two_files_raises() -> None:
    with pytest.raises(ValueError, match="'ping' of 'events' is defined in another file too"):
        merge_queries({"apps": {"ping": "SELECT 1;"}, "events": {"ping": "SELECT 2;"}})


# The real queries files


def test_real_queries_files_are_one_per_aggregate_and_each_has_queries() -> None:
    files = query_files()
    assert set(files) >= {"apps", "endpoints", "events", "deliveries", "maintenance"}
    assert all(files.values())


def test_real_queries_take_their_filters_as_parameters_never_as_spliced_text() -> None:
    assert not [name for name, sql in queries().items() if "{filters}" in sql or "{include" in sql]


@pytest.mark.parametrize("name", sorted(queries()))
def test_real_query_is_non_empty_sql(name: str) -> None:
    code = [line for line in queries()[name].splitlines() if not line.lstrip().startswith("--")]
    assert "".join(code).strip()


@pytest.mark.parametrize("name", sorted(queries()))
def test_real_query_holds_no_other_query_header(name: str) -> None:
    assert not re.search(r"^-- [a-z_][a-z0-9_]* --$", queries()[name], re.MULTILINE)


# parse_migrations


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, sql in files.items():
        (folder / name).write_text(sql)
    return folder


def test_parse_migrations_orders_by_version(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "0010_ten.sql": "SELECT 10;",
            "0002_two.sql": "SELECT 2;",
            "0001_initial.sql": "SELECT 1;",
        },
    )
    assert parse_migrations(tmp_path) == [
        Migration(1, "0001_initial", "SELECT 1;"),
        Migration(2, "0002_two", "SELECT 2;"),
        Migration(10, "0010_ten", "SELECT 10;"),
    ]


def test_parse_migrations_of_an_empty_folder_is_empty(tmp_path: Path) -> None:
    assert parse_migrations(tmp_path) == []


def test_parse_migrations_ignores_files_that_are_not_sql(tmp_path: Path) -> None:
    write(tmp_path, {"0001_initial.sql": "SELECT 1;", "README.md": "notes"})
    assert [m.version for m in parse_migrations(tmp_path)] == [1]


@pytest.mark.parametrize(
    "name", ["1_initial.sql", "0001-initial.sql", "0001_Initial.sql", "initial.sql", "00001_a.sql"]
)
def test_badly_named_migration_raises(tmp_path: Path, name: str) -> None:
    write(tmp_path, {"0002_ok.sql": "SELECT 2;", name: "SELECT 1;"})
    with pytest.raises(ValueError, match=r"is not named NNNN_name\.sql"):
        parse_migrations(tmp_path)


def test_duplicate_migration_versions_raise(tmp_path: Path) -> None:
    write(tmp_path, {"0001_initial.sql": "SELECT 1;", "0001_again.sql": "SELECT 2;"})
    with pytest.raises(ValueError, match="share a version number"):
        parse_migrations(tmp_path)


# The real migrations


def test_real_migrations_start_at_version_one() -> None:
    assert migrations()[0].version == 1


def test_real_migration_versions_are_contiguous() -> None:
    versions = [m.version for m in migrations()]
    assert versions == list(range(1, len(versions) + 1))


@pytest.mark.parametrize("migration", migrations(), ids=lambda m: m.name)
def test_real_migration_is_non_empty(migration: Migration) -> None:
    assert migration.sql.strip()
