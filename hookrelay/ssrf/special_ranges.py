"""The IANA IPv4 and IPv6 Special-Purpose Address Registries, read from the data file shipped
in the package (hookrelay/data/special_purpose_ranges.csv, which says where it comes from).

The interpreter's `ipaddress` module carries its own copy of these registries, and that copy
changes with Python's patch releases (3.11.7 accepts 192.0.0.0/24 and 3fff::/20); hookrelay
decides from its own.
"""

from __future__ import annotations

import csv
import ipaddress
from dataclasses import dataclass
from enum import StrEnum
from importlib.resources import files

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DATA_FILE = "special_purpose_ranges.csv"
COLUMNS = (
    "registry",
    "prefix",
    "name",
    "rfc",
    "allocated",
    "terminated",
    "globally_reachable",
    "note",
)
_VERSION_OF_REGISTRY = {"ipv4": 4, "ipv6": 6}


class Reachability(StrEnum):
    """The registry's "Globally Reachable" column, as it stands there."""

    TRUE = "True"
    FALSE = "False"
    NOT_APPLICABLE = "N/A"
    DEPRECATED = ""  # a deprecated block, whose properties the registry no longer gives


@dataclass(frozen=True)
class SpecialRange:
    """One block of a special-purpose registry."""

    network: IPNetwork
    name: str
    rfc: str
    globally_reachable: Reachability

    @property
    def reachable(self) -> bool:
        """Only an explicit True counts: N/A and a deprecated block's blank do not."""
        return self.globally_reachable is Reachability.TRUE


def parse_ranges(text: str) -> tuple[SpecialRange, ...]:
    """The blocks of the data file's text; ValueError naming the line for anything amiss, so a
    bad edit stops hookrelay at import rather than quietly letting a block through."""
    lines = [
        (number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line and not line.startswith("#")
    ]
    reader = csv.reader(line for _, line in lines)
    header = next(reader, None)
    if header is None or tuple(header) != COLUMNS:
        raise ValueError(f"{DATA_FILE}: the columns must be {','.join(COLUMNS)}, not {header}")
    return tuple(
        _parse_row(number, row) for (number, _), row in zip(lines[1:], reader, strict=True)
    )


def _parse_row(number: int, row: list[str]) -> SpecialRange:
    where = f"{DATA_FILE} line {number}"
    if len(row) != len(COLUMNS):
        raise ValueError(f"{where}: {len(row)} columns, not {len(COLUMNS)}")
    fields = dict(zip(COLUMNS, row, strict=True))
    try:
        network = ipaddress.ip_network(fields["prefix"])
    except ValueError as exc:
        raise ValueError(f"{where}: bad prefix: {exc}") from exc
    if _VERSION_OF_REGISTRY.get(fields["registry"]) != network.version:
        raise ValueError(f"{where}: registry {fields['registry']!r} for the prefix {network}")
    try:
        reachable = Reachability(fields["globally_reachable"])
    except ValueError as exc:
        raise ValueError(
            f"{where}: globally_reachable must be one of "
            f"{', '.join(repr(r.value) for r in Reachability)}"
        ) from exc
    for column in ("name", "rfc"):
        if not fields[column]:
            raise ValueError(f"{where}: the {column} is empty")
    return SpecialRange(network, fields["name"], fields["rfc"], reachable)


def _load() -> tuple[SpecialRange, ...]:
    return parse_ranges((files("hookrelay") / "data" / DATA_FILE).read_text(encoding="utf-8"))


SPECIAL_RANGES = _load()
# Most specific first, so that the first block holding an address is the one that decides (the
# registries say so: 192.0.0.0/24 and 2001::/23 are "not usable unless by virtue of a more
# specific reservation", such as 192.0.0.9/32 or 2001:20::/28).
_BY_VERSION: dict[int, tuple[SpecialRange, ...]] = {
    version: tuple(
        sorted(
            (r for r in SPECIAL_RANGES if r.network.version == version),
            key=lambda r: r.network.prefixlen,
            reverse=True,
        )
    )
    for version in (4, 6)
}


def most_specific_range(address: IPAddress) -> SpecialRange | None:
    """The most specific registry block that holds `address`, or None."""
    for block in _BY_VERSION[address.version]:
        if address in block.network:
            return block
    return None
