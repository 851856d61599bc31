"""The services sit below the API: nothing they import, directly or through other hookrelay
modules, is aiohttp (the DNS resolver comes in as a parameter)."""

from __future__ import annotations

import ast
from pathlib import Path

import hookrelay

PACKAGE = Path(hookrelay.__file__).parent


def _module_file(name: str) -> Path | None:
    """The file of the hookrelay module `name`; None if it names no module (a function)."""
    base = PACKAGE.joinpath(*name.split(".")[1:])
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def imported_packages(start: list[str]) -> set[str]:
    """The outside packages the hookrelay modules `start` import, following hookrelay's own."""
    seen: set[str] = set()
    outside: set[str] = set()
    todo = list(start)
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if name in seen or path is None:
            continue
        seen.add(name)
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for imported in names:
                if imported.split(".")[0] == "hookrelay":
                    todo.append(imported)
                else:
                    outside.add(imported.split(".")[0])
    return outside


def test_the_services_import_no_aiohttp() -> None:
    services = [f"hookrelay.services.{p.stem}" for p in (PACKAGE / "services").glob("*.py")]
    assert len(services) >= 7
    assert "aiohttp" not in imported_packages(services)


def test_the_import_walk_sees_aiohttp_where_it_is() -> None:
    assert "aiohttp" in imported_packages(["hookrelay.ssrf.outbound"])
