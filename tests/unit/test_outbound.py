"""The outbound client's guards, with a fake resolver: what reaches the resolver, and what a
failed connection says."""

from __future__ import annotations

import errno
import socket
import ssl

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from hookrelay.ssrf.outbound import (
    BlockedAddress,
    GuardedResolver,
    connect_error_message,
)


class FakeResolver(AbstractResolver):
    """Answers every name with one address and remembers what it was asked."""

    def __init__(self, address: str = "93.184.216.34") -> None:
        self.address = address
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return [
            ResolveResult(
                hostname=host, host=self.address, port=port, family=family, proto=0, flags=0
            )
        ]

    async def close(self) -> None:
        pass


@pytest.mark.parametrize("host", ["0x08080808", "134744072", "8.8.2056", "010.8.8.8"])
async def test_the_guarded_resolver_refuses_a_numeric_spelling_without_resolving_it(
    host: str,
) -> None:
    inner = FakeResolver()
    with pytest.raises(BlockedAddress, match="four decimal numbers"):
        await GuardedResolver((), inner).resolve(host, 80)
    assert inner.asked == []


async def test_the_guarded_resolver_passes_a_name_with_public_answers() -> None:
    inner = FakeResolver()
    results = await GuardedResolver((), inner).resolve("public.example", 80)
    assert [r["host"] for r in results] == ["93.184.216.34"]
    assert inner.asked == ["public.example"]


async def test_the_guarded_resolver_refuses_a_private_answer_without_naming_it() -> None:
    with pytest.raises(BlockedAddress) as blocked:
        await GuardedResolver((), FakeResolver("10.0.0.5")).resolve("internal.example", 80)
    assert str(blocked.value) == "the host internal.example resolves to a non-public address"


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 9)"),
            "Connection refused (ECONNREFUSED)",
        ),
        (
            OSError(errno.ENETUNREACH, "Connect call failed ('10.0.0.5', 443)"),
            "Network is unreachable (ENETUNREACH)",
        ),
        # asyncio's form when every address of a name failed differently.
        (
            OSError(
                "Multiple exceptions: [Errno 111] Connect call failed ('::1', 9, 0, 0), "
                "[Errno 111] Connect call failed ('127.0.0.1', 9), "
                "[Errno 101] Network is unreachable ('10.0.0.5', 9)"
            ),
            "every address failed: Connection refused (ECONNREFUSED); "
            "Network is unreachable (ENETUNREACH)",
        ),
        (
            socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
            "Name or service not known",
        ),
        (
            ssl.SSLCertVerificationError(
                1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed"
            ),
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed",
        ),
        (OSError("something at 10.0.0.5"), "the connection failed (OSError)"),
    ],
)
def test_a_connect_error_is_told_without_the_address(error: OSError, message: str) -> None:
    assert connect_error_message(error) == message
