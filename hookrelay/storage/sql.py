"""The loader of `sql/queries/` (named queries, a file per aggregate) and `sql/migrations/`
(numbered files)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from hookrelay.resources import resource_dir

_QUERY_HEADER = re.compile(r"^-- ([a-z_][a-z0-9_]*) --$", re.MULTILINE)
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# A migration's first line that says it runs outside a transaction, a statement at a time (what
# must not hold its locks to the end: CREATE INDEX CONCURRENTLY, validating a constraint). Each
# statement of one must be safe to run again, since a failure leaves those before it done.
NO_TRANSACTION = "-- hookrelay: no transaction"
# Where one statement of such a migration ends: a semicolon that ends a line.
_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def transactional(self) -> bool:
        """Whether the migration runs as one transaction (all of it or nothing)."""
        return not self.sql.startswith(NO_TRANSACTION)

    def statements(self) -> list[str]:
        """The statements of a migration that runs outside a transaction, in order, without
        the comment lines between them."""
        found = []
        for chunk in _STATEMENT_END.split(self.sql):
            lines = [line for line in chunk.splitlines() if not line.lstrip().startswith("--")]
            statement = "\n".join(lines).strip()
            if statement:
                found.append(statement)
        return found


def parse_queries(text: str) -> dict[str, str]:
    """Split a queries file into {name: sql}; each query is `-- name --`, a comment, the SQL."""
    queries: dict[str, str] = {}
    parts = _QUERY_HEADER.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = body.strip().splitlines()
        if not lines or not lines[0].startswith("-- "):
            raise ValueError(f"query {name!r} needs a one-line description under its name")
        sql = "\n".join(lines[1:]).strip()
        if not sql:
            raise ValueError(f"query {name!r} has no SQL")
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        queries[name] = sql
    return queries


def parse_migrations(folder: Path) -> list[Migration]:
    """Return the migrations in `folder`, in version order; versions must not repeat."""
    migrations: list[Migration] = []
    for path in sorted(folder.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            raise ValueError(f"migration file {path.name!r} is not named NNNN_name.sql")
        migrations.append(Migration(int(match.group(1)), path.stem, path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise ValueError("two migrations share a version number")
    return migrations


def merge_queries(files: dict[str, dict[str, str]]) -> dict[str, str]:
    """One {name: sql} of the named queries of every file; a name may be used in one file only."""
    merged: dict[str, str] = {}
    for file, named in files.items():
        for name, sql in named.items():
            if name in merged:
                raise ValueError(f"query {name!r} of {file!r} is defined in another file too")
            merged[name] = sql
    return merged


@cache
def query_files() -> dict[str, dict[str, str]]:
    """The named queries of this installation, by file (its name without `.sql`: `apps`, ...)."""
    folder = resource_dir("sql") / "queries"
    return {path.stem: parse_queries(path.read_text()) for path in sorted(folder.glob("*.sql"))}


@cache
def queries() -> dict[str, str]:
    """Every named query of this installation, from all its files."""
    return merge_queries(query_files())


@cache
def migrations() -> list[Migration]:
    """The migrations of this installation."""
    return parse_migrations(resource_dir("sql") / "migrations")
