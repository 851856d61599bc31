"""How a setting is declared: the HOOKRELAY_* variable it is read from (its default as written
in the environment, its parser, its meaning), and the parsers of such values."""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload
from urllib.parse import urlsplit

from hookrelay.durations import parse_duration

T = TypeVar("T")
Number = TypeVar("Number", int, float)
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ENV_PREFIX = "HOOKRELAY_"
METADATA_KEY = "variable"  # where a dataclass field made by setting() keeps its Variable


class ConfigError(ValueError):
    """A setting in the environment has a value hookrelay cannot use."""


@dataclass(frozen=True)
class Variable:
    """One HOOKRELAY_* variable: how it is read, and how the README's table describes it."""

    name: str  # without the HOOKRELAY_ prefix
    default: str | None  # as it would be written in the environment; None or "": none
    parse: Callable[[str], Any]  # raises ValueError, with the reason, for a value it refuses
    help: str
    note: str = ""  # follows the default in the README (e.g. what `hookrelay dev` fills in)
    choices: tuple[str, ...] = ()  # when set, the only values taken

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name

    def read(self, raw: str) -> Any:
        """The value `raw` (stripped, not empty) stands for; ConfigError naming the variable."""
        if self.choices and raw not in self.choices:
            raise ConfigError(f"{self.env} must be {' or '.join(self.choices)}")
        try:
            return self.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{self.env}: {exc}") from exc

    def table_row(self) -> str:
        """This variable's row of the README's configuration table (Markdown)."""
        shown = f"`{self.default}`" if self.default else "none"
        if self.note:
            shown += f" {self.note}"
        return f"| `{self.env}` | {shown} | {self.help} |"


@overload
def setting(
    name: str,
    default: str,
    parse: Callable[[str], T],
    help: str,
    *,
    note: str = "",
    choices: tuple[str, ...] = (),
    secret: bool = False,
) -> T: ...
@overload
def setting(
    name: str,
    default: None,
    parse: Callable[[str], T],
    help: str,
    *,
    note: str = "",
    choices: tuple[str, ...] = (),
    secret: bool = False,
) -> T | None: ...
def setting(
    name: str,
    default: str | None,
    parse: Callable[[str], T],
    help: str,
    *,
    note: str = "",
    choices: tuple[str, ...] = (),
    secret: bool = False,
) -> T | None:
    """A dataclass field read from HOOKRELAY_<name>. Its default is `default` parsed, so the
    README shows the very text the value comes from; a secret stays out of repr (and logs)."""
    declared = Variable(name, default, parse, help, note, choices)
    value = None if default is None else parse(default)
    # A Field at run time (typed as its value), which @dataclass turns into the default.
    return field(default=value, repr=not secret, metadata={METADATA_KEY: declared})


def parse_text(text: str) -> str:
    return text


def parse_public_url(text: str) -> str:
    """An http(s) URL with a host and no query or fragment, without its trailing slash; empty
    for none."""
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.query or parts.fragment:
        raise ValueError("must have no query or fragment")
    return text.rstrip("/")


def parse_positive_duration(text: str) -> float:
    """A duration (`250ms`, `15s`, `5m`, `2h`, `5d`; a bare number: seconds) over zero."""
    return _positive(parse_duration(text))


def parse_whole_minutes(text: str) -> float:
    """A duration of one minute or more, in whole minutes (`1m`, `90m`, `1d`)."""
    seconds = parse_duration(text)
    if seconds < 60 or seconds % 60:
        raise ValueError("must be a whole number of minutes, at least 1m")
    return seconds


def parse_positive_int(text: str) -> int:
    return _positive(int(text))


def _positive(value: Number) -> Number:
    if value <= 0:
        raise ValueError("must be greater than zero")
    return value


def parse_flag(text: str) -> bool:
    lowered = text.lower()
    if lowered not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ValueError("must be true or false")
    return lowered in ("1", "true", "yes", "on")


def parse_secret_key(text: str) -> bytes:
    """Decode a base64 (standard or URL-safe) key of exactly 32 bytes."""
    padded = text + "=" * (-len(text) % 4)
    try:
        key = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("must be base64") from exc
    if len(key) != 32:
        raise ValueError(f"must decode to 32 bytes, not {len(key)}")
    return key


def parse_secret_keys(text: str) -> tuple[bytes, ...]:
    """Parse comma-separated base64 keys of 32 bytes each."""
    return tuple(parse_secret_key(part.strip()) for part in text.split(",") if part.strip())


def parse_cidrs(text: str) -> tuple[IPNetwork, ...]:
    """Parse a comma-separated list of networks (`127.0.0.0/8, ::1/128`)."""
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()
    )
