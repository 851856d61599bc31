"""The CHECK constraints of a migrated database allow exactly the values of the StrEnums that
hookrelay.statuses declares: a new status needs a migration, and a test says so."""

from __future__ import annotations

import re
from enum import StrEnum

import asyncpg
import pytest

from hookrelay.statuses import DeliveryStatus, EndpointStatus, SigningScheme

# 'value'::text, as Postgres prints each literal of an IN (...) list in a constraint.
LITERAL = re.compile(r"'((?:[^']|'')*)'::text")

CHECKS_OF_ONE_COLUMN = """
SELECT pg_get_constraintdef(c.oid) AS definition
FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
WHERE c.contype = 'c' AND c.conrelid = $1::regclass AND a.attname = $2
  AND cardinality(c.conkey) = 1
"""


async def allowed_values(db_url: str, table: str, column: str) -> list[str]:
    connection = await asyncpg.connect(db_url)
    try:
        rows = await connection.fetch(CHECKS_OF_ONE_COLUMN, table, column)
    finally:
        await connection.close()
    assert len(rows) == 1, f"{table}.{column} should have one CHECK, not {len(rows)}"
    return [value.replace("''", "'") for value in LITERAL.findall(rows[0]["definition"])]


@pytest.mark.parametrize(
    ("table", "column", "enum"),
    [
        ("deliveries", "status", DeliveryStatus),
        ("endpoints", "status", EndpointStatus),
        ("endpoints", "signing", SigningScheme),
    ],
)
async def test_a_status_column_allows_exactly_the_enum_values(
    db_url: str, table: str, column: str, enum: type[StrEnum]
) -> None:
    assert await allowed_values(db_url, table, column) == list(enum)


async def test_a_value_outside_the_enum_is_refused_by_the_database(db_url: str) -> None:
    connection = await asyncpg.connect(db_url)
    try:
        await connection.execute("INSERT INTO apps (id, name) VALUES ('app_x', 'x')")
        with pytest.raises(asyncpg.CheckViolationError):
            await connection.execute(
                "INSERT INTO endpoints (id, app_id, url, signing, secret_ciphertext,"
                " secret_key_id) VALUES ('ep_x', 'app_x', 'https://x', 'rsa', '', 'k')"
            )
    finally:
        await connection.close()
