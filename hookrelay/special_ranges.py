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
from importlib.resources import files

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DATA_FILE = "special_purpose_ranges.csv"


@dataclass(frozen=True)
class SpecialRange:
    """One block of a special-purpose registry."""

    network: IPNetwork
    name: str
    rfc: str
    # The registry's "Globally Reachable" column: "True", "False", "N/A", or "" (deprecated).
    globally_reachable: str

    @property
    def reachable(self) -> bool:
        """Only an explicit True counts: N/A and a deprecated block's blank do not."""
        return self.globally_reachable == "True"


def _load() -> tuple[SpecialRange, ...]:
    text = (files("hookrelay") / "data" / DATA_FILE).read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return tuple(
        SpecialRange(
            network=ipaddress.ip_network(row["prefix"]),
            name=row["name"],
            rfc=row["rfc"],
            globally_reachable=row["globally_reachable"],
        )
        for row in rows
    )


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
