"""Where `sql/` and `schemas/` are: beside the package in a checkout, inside it in a wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """Return the folder `name` (`sql` or `schemas`) of this installation."""
    # The wheel's own copy first: beside site-packages/hookrelay may stand another
    # distribution's sql/ or schemas/.
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"hookrelay's {name}/ folder is missing from this installation")
