"""The outbound HTTP client: every connection goes only to an address the SSRF rules allow."""

from __future__ import annotations

import errno
import os
import re
import socket
import ssl
from collections.abc import Iterable

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from hookrelay import __version__
from hookrelay.errors import UnsafeTarget
from hookrelay.ssrf.rules import (
    IPNetwork,
    check_addresses,
    ipv4_spelling_problem,
)

# How asyncio writes each failure when every address of a name failed differently.
_ERRNO_IN_MESSAGE = re.compile(r"\[Errno (\d+)\]")


class BlockedAddress(OSError):
    """A connection was refused by the SSRF rules (carried inside aiohttp's connector errors)."""


def connect_error_message(error: OSError) -> str:
    """Why a connection failed, for the tenant's attempt record: the reason and the errno's
    name, never the address (asyncio's messages carry the address connected to, which for a
    name is the gateway resolver's answer)."""
    if isinstance(error, ssl.SSLError | socket.gaierror):
        # Their errno is the library's own code, not errno's; their text names no address.
        return error.strerror or type(error).__name__
    if error.errno is not None:
        return _errno_text(error.errno)
    numbers = dict.fromkeys(int(n) for n in _ERRNO_IN_MESSAGE.findall(str(error)))
    if numbers:
        return "every address failed: " + "; ".join(_errno_text(n) for n in numbers)
    return f"the connection failed ({type(error).__name__})"


def _errno_text(number: int) -> str:
    name = errno.errorcode.get(number)
    return f"{os.strerror(number)} ({name})" if name else os.strerror(number)


class GuardedResolver(AbstractResolver):
    """Resolves like the default resolver, then refuses unless every answer is allowed.

    aiohttp connects to exactly the addresses returned here, so the checked address is the
    one used: a second, rebinding lookup never happens.
    """

    def __init__(self, allowed: Iterable[IPNetwork], inner: AbstractResolver | None = None):
        self._allowed = tuple(allowed)
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        # The connector passes some numeric spellings here as names (0x7f000001); the system
        # resolver would read them as addresses.
        problem = ipv4_spelling_problem(host)
        if problem is not None:
            raise BlockedAddress(problem)
        results = await self._inner.resolve(host, port, family)
        try:
            check_addresses(host, (r["host"] for r in results), self._allowed)
        except UnsafeTarget as exc:
            raise BlockedAddress(exc.message) from exc
        return results

    async def close(self) -> None:
        await self._inner.close()


def create_session(
    allowed: Iterable[IPNetwork],
    timeout_s: float,
    max_connections: int,
    resolver: AbstractResolver | None = None,
) -> aiohttp.ClientSession:
    """Return a client session for deliveries: guarded DNS, kept-alive connections, no cookies."""
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(allowed, resolver),
        limit=max_connections,
        ttl_dns_cache=30,
        enable_cleanup_closed=True,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        # identity: hookrelay stores the first bytes of each answer as text, so it asks for an
        # answer it can read without decompressing.
        headers={"User-Agent": f"hookrelay/{__version__}", "Accept-Encoding": "identity"},
    )
