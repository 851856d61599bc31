"""The pages the API serves beside itself: every file of the console is served, and nothing
else is."""

from __future__ import annotations

from importlib.resources import files

from hookrelay.api.handlers.pages import CONSOLE_ASSETS


def test_every_file_of_the_console_is_served_and_no_other() -> None:
    shipped = {entry.name for entry in (files("hookrelay") / "console").iterdir()}
    assert shipped == {"index.html", *CONSOLE_ASSETS}
