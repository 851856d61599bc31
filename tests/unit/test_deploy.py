"""The files an operator deploys with (deploy/, docker-compose.yml) name only commands, options
and HOOKRELAY_* variables that exist, and template the shipped nginx config where it has the
lines they replace. Docker and systemd do not run here: these are the checks that can."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from hookrelay.cli import _parser
from hookrelay.settings import variables

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
COMPOSE_FILES = [REPO_ROOT / "docker-compose.yml", DEPLOY / "compose.yml"]
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
ENV_EXAMPLE = DEPLOY / "hookrelay.env.example"
NGINX_CONFIG = DEPLOY / "nginx" / "hookrelay.conf"
# Read by the units, not by hookrelay: the address `hookrelay api` listens on.
UNIT_VARIABLES = {"HOOKRELAY_API_HOST"}
DECLARED = {declared.env for declared in variables().values()}
SED_REPLACEMENT = re.compile(r"-e 's/([^/]+)/([^/]+)/'")


def parses(argv: list[str]) -> None:
    """Fail unless `hookrelay argv` is a command line the CLI takes."""
    try:
        _parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"hookrelay {shlex.join(argv)}: the CLI refuses it ({exc})")


def compose(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def hookrelay_services(path: Path) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose(path)["services"]
    return {name: s for name, s in services.items() if s.get("image", "").startswith("hookrelay")}


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_services_run_commands_the_cli_takes(path: Path) -> None:
    services = hookrelay_services(path)
    assert {s["command"][0] for s in services.values()} >= {"migrate", "api", "worker"}
    for service in services.values():
        parses(service["command"])


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_services_set_only_declared_variables(path: Path) -> None:
    for name, service in hookrelay_services(path).items():
        names = set(service["environment"])
        assert names - DECLARED == set(), name
        assert {"HOOKRELAY_DATABASE_URL", "HOOKRELAY_REDIS_URL", "HOOKRELAY_SECRET_KEY"} <= names


def test_compose_runs_two_api_processes_and_two_workers() -> None:
    services = hookrelay_services(DEPLOY / "compose.yml")
    apis = [s for s in services.values() if s["command"][0] == "api"]
    workers = [s for s in services.values() if s["command"][0] == "worker"]
    assert len(apis) == 2
    assert sum(s.get("deploy", {}).get("replicas", 1) for s in workers) == 2


def test_compose_nginx_templates_the_shipped_config_upstream_lines() -> None:
    nginx = compose(DEPLOY / "compose.yml")["services"]["nginx"]
    assert nginx["volumes"] == ["./nginx/hookrelay.conf:/hookrelay.conf:ro"]
    replaced = dict(SED_REPLACEMENT.findall(nginx["command"][-1]))
    upstream = re.findall(r"^\s*(server [\d.]+:\d+;)$", NGINX_CONFIG.read_text(), re.MULTILINE)
    # Every upstream line is replaced (a sed that matches nothing would leave 127.0.0.1 there),
    # each by an API service of the file, on the port it listens on.
    assert sorted(replaced) == sorted(upstream)
    apis = {
        f"server {name}:{s['command'][s['command'].index('--port') + 1]};"
        for name, s in hookrelay_services(DEPLOY / "compose.yml").items()
        if s["command"][0] == "api"
    }
    assert set(replaced.values()) == apis


def unit(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser["Service"]


def env_example() -> dict[str, str]:
    """The variables of the environment file example, commented-out ones too."""
    found = re.findall(r"^#?(HOOKRELAY_[A-Z_]+)=(.*)$", ENV_EXAMPLE.read_text(), re.MULTILINE)
    return dict(found)


def test_there_is_a_unit_for_the_api_the_worker_and_migrate() -> None:
    assert [p.name for p in UNITS] == [
        "hookrelay-api@.service",
        "hookrelay-migrate.service",
        "hookrelay-worker@.service",
    ]


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_units_run_commands_the_cli_takes_with_the_example_environment(path: Path) -> None:
    service = unit(path)
    assert service["EnvironmentFile"] == "/etc/hookrelay/hookrelay.env"
    example = env_example()
    command = service["ExecStart"].replace("%i", "8081")
    for name in re.findall(r"\$\{(\w+)\}", command):
        assert name in example, f"{path.name} uses {name}, which the example does not set"
        command = command.replace(f"${{{name}}}", example[name])
    binary, *argv = shlex.split(command)
    assert binary.endswith("/hookrelay")
    parses(argv)
    if path.name.endswith("@.service"):
        assert "%i" in service["ExecStart"] or argv == ["worker"]


def test_env_example_sets_only_declared_variables_and_those_the_units_read() -> None:
    assert set(env_example()) - DECLARED == UNIT_VARIABLES
    assert {"HOOKRELAY_DATABASE_URL", "HOOKRELAY_REDIS_URL", "HOOKRELAY_SECRET_KEY"} <= set(
        env_example()
    )
