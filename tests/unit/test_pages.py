"""What the console is served and shown: every file of it, and nothing else; an endpoint's
attempts counted up to a cap."""

from __future__ import annotations

from importlib.resources import files

from hookrelay.api.handlers.endpoints import ATTEMPTS_COUNT_CAP, _rate
from hookrelay.api.handlers.pages import CONSOLE_ASSETS


def test_every_file_of_the_console_is_served_and_no_other() -> None:
    shipped = {entry.name for entry in (files("hookrelay") / "console").iterdir()}
    assert shipped == {"index.html", *CONSOLE_ASSETS}


def test_an_endpoints_window_past_the_cap_says_so_and_rates_what_it_counted() -> None:
    cap = ATTEMPTS_COUNT_CAP
    assert _rate(0, 0) == {"attempts": 0, "more": False, "succeeded": 0, "success_rate": None}
    assert _rate(4, 3) == {"attempts": 4, "more": False, "succeeded": 3, "success_rate": 0.75}
    assert _rate(cap + 1, cap // 2) == {
        "attempts": cap,
        "more": True,
        "succeeded": cap // 2,
        "success_rate": 0.5,
    }
