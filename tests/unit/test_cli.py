"""The `hookrelay` command explains itself: help for every option with its default, --version,
and a bare `hookrelay` that prints help instead of failing."""

from __future__ import annotations

import argparse
import importlib.metadata
import subprocess
import sys
from collections.abc import Iterator

import pytest

import hookrelay
from hookrelay.cli import _parser

NO_DEFAULT = (None, False, argparse.SUPPRESS)


def every_parser(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from every_parser(sub)


def options(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:
        if action.option_strings and action.dest not in ("help", "version"):
            yield action


def rendered_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The option's entry in `parser --help`, on one line."""
    formatter = parser._get_formatter()
    formatter.add_argument(action)
    return " ".join(formatter.format_help().split())


def test_the_walk_reaches_every_subcommand() -> None:
    progs = {parser.prog for parser in every_parser(_parser())}
    assert {"hookrelay dev", "hookrelay receive", "hookrelay bench run"} <= progs


def test_every_option_says_what_it_does_and_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "500")  # no line breaks inside a default
    checked = 0
    for parser in every_parser(_parser()):
        for action in options(parser):
            name = f"{parser.prog} {action.option_strings[-1]}"
            assert action.help, f"{name} has no help"
            text = rendered_help(parser, action)
            assert len(text.split(action.option_strings[-1], 1)[1].split()) >= 3, name
            if action.default not in NO_DEFAULT:
                assert f"default: {action.default}" in text, f"{name}: {text}"
            checked += 1
    assert checked >= 19  # every option there is today


def test_receive_status_says_whom_it_answers() -> None:
    receive = next(p for p in every_parser(_parser()) if p.prog == "hookrelay receive")
    status = next(a for a in options(receive) if a.dest == "status")
    assert "verify" in rendered_help(receive, status)


def run_hookrelay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hookrelay", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version_prints_the_package_version() -> None:
    done = run_hookrelay("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"hookrelay {importlib.metadata.version('hookrelay')}"
    assert importlib.metadata.version("hookrelay") == hookrelay.__version__


def test_bare_hookrelay_prints_help_and_exits_0() -> None:
    done = run_hookrelay()
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: hookrelay")
    for command in ("dev", "api", "worker", "migrate", "receive"):
        assert f"    {command} " in done.stdout


def test_receive_refuses_a_placeholder_secret_and_says_why() -> None:
    done = run_hookrelay("receive", "--port", "1", "--secret", "whsec_...")
    assert done.returncode == 2
    assert "--secret is not an endpoint's signing secret" in done.stderr
