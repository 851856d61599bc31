"""One package per engine: only hookrelay.storage imports asyncpg, and only hookrelay.broker
imports redis or arq (and leans on arq's internals), so a change of an engine is a change of
that package alone."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "hookrelay"
# Each engine's drivers, and the one package that may import them.
BOUNDARIES = [
    pytest.param(PACKAGE / "storage", frozenset({"asyncpg"}), id="storage"),
    pytest.param(PACKAGE / "broker", frozenset({"redis", "arq"}), id="broker"),
]


def imported_roots(source: str) -> set[str]:
    """The top-level packages a module imports, wherever the import statement is, including
    `importlib.import_module("...")` with a literal name."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (getattr(node.func, "attr", None) or getattr(node.func, "id", None))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            roots.add(node.args[0].value.split(".")[0])
    return roots


@pytest.mark.parametrize(("home", "drivers"), BOUNDARIES)
def test_no_module_outside_its_package_imports_an_engine_driver(
    home: Path, drivers: frozenset[str]
) -> None:
    outside = [path for path in PACKAGE.rglob("*.py") if home not in path.parents]
    assert len(outside) > 50  # the whole package was scanned
    offenders = {
        path.relative_to(PACKAGE.parent).as_posix(): sorted(found)
        for path in outside
        if (found := imported_roots(path.read_text()) & drivers)
    }
    assert offenders == {}


@pytest.mark.parametrize(("home", "drivers"), BOUNDARIES)
def test_the_package_is_where_its_engine_drivers_are_imported(
    home: Path, drivers: frozenset[str]
) -> None:
    imported = set().union(*(imported_roots(path.read_text()) for path in home.glob("*.py")))
    assert imported >= drivers


def test_the_scan_finds_every_form_of_import() -> None:
    source = (
        "import redis.asyncio as aioredis\n"
        "def later():\n"
        "    from arq.worker import Retry\n"
        "    importlib.import_module('hiredis')\n"
        "from . import sibling\n"
        "from hookrelay import broker\n"
    )
    assert imported_roots(source) == {"redis", "arq", "hiredis", "hookrelay"}
