"""The send stage against an in-memory HTTP session: what is POSTed, what is kept of the answer,
and how each way a request can fail is named."""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import aiohttp
import pytest
from aiohttp.helpers import sentinel
from multidict import CIMultiDict
from standardwebhooks.webhooks import Webhook

from hookrelay.delivery.send import (
    MAX_HEADER_VALUE_CHARS,
    RESPONSE_ERROR_CHARS,
    Response,
    Sender,
    TransportFailure,
    transport_failure,
)
from hookrelay.models import ClaimedDelivery
from hookrelay.signing.secretbox import SecretBox
from hookrelay.signing.webhooks import generate_hmac_secret
from hookrelay.ssrf.outbound import BlockedAddress
from hookrelay.statuses import ErrorKind
from tests.unit.claims import claimed

BOX = SecretBox(os.urandom(32))
SECRET = generate_hmac_secret()
BODY = '{"type":"job.completed","data":{"job_id":"j1"}}'
SESSION_TIMEOUT_S = 15.0
BODY_CAP_BYTES = 64


def claim_for(url: str = "https://receiver.example/hook", **changes: Any) -> ClaimedDelivery:
    ciphertext, key_id = BOX.encrypt(SECRET, "ep_1")
    sendable = {
        "url": url,
        "secret_ciphertext": ciphertext,
        "secret_key_id": key_id,
        "headers": {"X-Tenant": "acme"},
        "body": BODY,
    }
    return claimed(**{**sendable, **changes})


class FakeContent:
    def __init__(self, body: bytes, error: Exception | None) -> None:
        self.body = body
        self.error = error

    async def read(self, n: int) -> bytes:
        if self.error is not None:
            raise self.error
        return self.body[:n]


@dataclass
class FakeResponse:
    status: int
    headers: CIMultiDict[str]
    content: FakeContent


@dataclass
class FakeSession:
    """Answers every POST as told, or raises `error` before any answer; records each call."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    error: Exception | None = None
    body_error: Exception | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)

    @asynccontextmanager
    async def post(self, url: str, **kwargs: Any) -> AsyncIterator[FakeResponse]:
        self.calls.append({"url": url, **kwargs})
        if self.error is not None:
            raise self.error
        yield FakeResponse(
            self.status, CIMultiDict(self.headers), FakeContent(self.body, self.body_error)
        )


def sender_with(session: FakeSession, allowed: tuple[Any, ...] = ()) -> Sender:
    return Sender(session, BOX, allowed, SESSION_TIMEOUT_S, BODY_CAP_BYTES)  # type: ignore[arg-type]


# What is sent


async def test_the_exact_bytes_are_posted_signed_with_the_endpoint_headers() -> None:
    session = FakeSession()
    await sender_with(session).send(claim_for(), timeout_s=SESSION_TIMEOUT_S)
    [call] = session.calls
    assert call["url"] == "https://receiver.example/hook"
    assert call["data"] == BODY.encode()
    headers = call["headers"]
    assert headers["content-type"] == "application/json"
    assert headers["X-Tenant"] == "acme"
    assert headers["webhook-id"] == "evt_1"
    assert Webhook(SECRET).verify(call["data"], headers) == json.loads(BODY)


async def test_redirects_are_never_followed() -> None:
    session = FakeSession(status=302, headers={"Location": "https://elsewhere.example/"})
    sent = await sender_with(session).send(claim_for(), timeout_s=SESSION_TIMEOUT_S)
    assert session.calls[0]["allow_redirects"] is False
    assert isinstance(sent.result, Response)
    assert sent.result.status_code == 302


async def test_a_rotated_out_secret_in_its_grace_period_signs_too() -> None:
    old = generate_hmac_secret()
    old_ciphertext, old_key_id = BOX.encrypt(old, "ep_1")
    claim = claim_for(previous_secret_ciphertext=old_ciphertext, previous_secret_key_id=old_key_id)
    session = FakeSession()
    await sender_with(session).send(claim, timeout_s=SESSION_TIMEOUT_S)
    [call] = session.calls
    assert len(call["headers"]["webhook-signature"].split()) == 2
    for secret in (SECRET, old):
        assert Webhook(secret).verify(call["data"], call["headers"]) == json.loads(BODY)


async def test_stored_headers_the_rules_refuse_are_not_sent() -> None:
    session = FakeSession()
    claim = claim_for(headers={"Expect": "100-continue", "X-Tenant": "acme"})
    await sender_with(session).send(claim, timeout_s=SESSION_TIMEOUT_S)
    assert "Expect" not in session.calls[0]["headers"]
    assert session.calls[0]["headers"]["X-Tenant"] == "acme"


async def test_the_session_timeout_is_used_unless_a_shorter_one_is_asked() -> None:
    session = FakeSession()
    sender = sender_with(session)
    await sender.send(claim_for(), timeout_s=SESSION_TIMEOUT_S)
    await sender.send(claim_for(), timeout_s=3.0)
    assert session.calls[0]["timeout"] is sentinel
    assert session.calls[1]["timeout"] == aiohttp.ClientTimeout(total=3.0)


async def test_a_secret_that_cannot_be_decrypted_raises_without_a_request() -> None:
    session = FakeSession()
    with pytest.raises(ValueError, match="unknown key"):
        await sender_with(session).send(
            claim_for(secret_key_id="nobody"), timeout_s=SESSION_TIMEOUT_S
        )
    assert session.calls == []


# What is kept of the answer


async def test_only_the_listed_response_headers_are_kept_with_capped_values() -> None:
    session = FakeSession(
        headers={
            "Content-Type": "text/plain",
            "Retry-After": "30",
            "Set-Cookie": "session=s3cret",
            "X-Request-Id": "r" * 1000,
        }
    )
    sent = await sender_with(session).send(claim_for(), timeout_s=SESSION_TIMEOUT_S)
    assert isinstance(sent.result, Response)
    assert sent.result.headers == {
        "content-type": "text/plain",
        "retry-after": "30",
        "x-request-id": "r" * MAX_HEADER_VALUE_CHARS,
    }


async def test_the_body_is_kept_up_to_the_cap_as_text_postgres_can_store() -> None:
    session = FakeSession(body=b"\x00\xffab" + b"c" * 500)
    sent = await sender_with(session).send(claim_for(), timeout_s=SESSION_TIMEOUT_S)
    assert isinstance(sent.result, Response)
    assert sent.result.body == "\ufffd\ufffdab" + "c" * (BODY_CAP_BYTES - 4)
    assert sent.result.cut_short is None


async def test_a_body_cut_short_keeps_the_status_and_names_the_failure() -> None:
    session = FakeSession(status=200, body_error=aiohttp.ServerDisconnectedError())
    sent = await sender_with(session).send(claim_for(), timeout_s=SESSION_TIMEOUT_S)
    assert isinstance(sent.result, Response)
    assert (sent.result.status_code, sent.result.body) == (200, None)
    assert sent.result.cut_short is not None
    assert sent.result.cut_short.kind == ErrorKind.RESET


async def test_the_attempt_is_timed_from_before_the_request() -> None:
    sent = await sender_with(FakeSession()).send(claim_for(), timeout_s=SESSION_TIMEOUT_S)
    assert sent.started_at.tzinfo is UTC
    assert 0 <= sent.duration_ms < 1000


# Targets refused before any request


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest",
        "http://0x7f000001/hook",
        "http://[::ffff:127.1]:9/hook",
    ],
)
async def test_an_address_the_rules_refuse_fails_as_unsafe_without_a_request(url: str) -> None:
    session = FakeSession()
    sent = await sender_with(session).send(claim_for(url), timeout_s=SESSION_TIMEOUT_S)
    assert isinstance(sent.result, TransportFailure)
    assert sent.result.kind == ErrorKind.UNSAFE_TARGET
    assert session.calls == []


async def test_an_allowed_address_is_posted_to() -> None:
    session = FakeSession()
    allowed = (ipaddress.ip_network("127.0.0.0/8"),)
    sent = await sender_with(session, allowed).send(
        claim_for("http://127.0.0.1/hook"), timeout_s=SESSION_TIMEOUT_S
    )
    assert isinstance(sent.result, Response)
    assert len(session.calls) == 1


async def test_a_stored_url_that_cannot_be_parsed_is_a_failed_attempt() -> None:
    session = FakeSession()
    sent = await sender_with(session).send(
        claim_for("http://[::1/hook"), timeout_s=SESSION_TIMEOUT_S
    )
    assert isinstance(sent.result, TransportFailure)
    assert sent.result.kind == ErrorKind.REQUEST_ERROR
    assert sent.result.message.startswith("ValueError: ")
    assert session.calls == []


# How failures are named


def _connector_error(os_error: OSError) -> aiohttp.ClientConnectorError:
    return aiohttp.ClientConnectorError(None, os_error)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "kind", "message"),
    [
        pytest.param(
            BlockedAddress("the address 10.0.0.1 is private"),
            ErrorKind.UNSAFE_TARGET,
            "the address 10.0.0.1 is private",
            id="blocked-address",
        ),
        pytest.param(TimeoutError(), ErrorKind.TIMEOUT, "no answer within 2.5s", id="timeout"),
        pytest.param(
            aiohttp.ServerTimeoutError("read timed out"),
            ErrorKind.TIMEOUT,
            "no answer within 2.5s",
            id="server-timeout",
        ),
        pytest.param(
            aiohttp.ConnectionTimeoutError("connect timed out"),
            ErrorKind.TIMEOUT,
            "no answer within 2.5s",
            id="connection-timeout",
        ),
        pytest.param(
            _connector_error(BlockedAddress("the host x resolves to a non-public address")),
            ErrorKind.UNSAFE_TARGET,
            "the host x resolves to a non-public address",
            id="resolver-refused",
        ),
        pytest.param(
            _connector_error(ConnectionRefusedError(errno.ECONNREFUSED, "refused 10.1.1.1")),
            ErrorKind.CONNECT,
            "Connection refused (ECONNREFUSED)",
            id="refused",
        ),
        pytest.param(
            _connector_error(ssl.SSLError(1, "certificate verify failed")),
            ErrorKind.CONNECT,
            "certificate verify failed",
            id="tls",
        ),
        pytest.param(
            aiohttp.ServerDisconnectedError(),
            ErrorKind.RESET,
            "Server disconnected",
            id="disconnected",
        ),
        pytest.param(
            aiohttp.ClientOSError(errno.ECONNRESET, "Connection reset by peer"),
            ErrorKind.RESET,
            "[Errno 104] Connection reset by peer",
            id="client-os-error",
        ),
        pytest.param(ConnectionResetError(), ErrorKind.RESET, "ConnectionResetError", id="reset"),
        pytest.param(
            aiohttp.ClientPayloadError("bad\x00chunk"),
            ErrorKind.HTTP_ERROR,
            "bad\ufffdchunk",
            id="payload",
        ),
        pytest.param(
            aiohttp.ClientError(), ErrorKind.HTTP_ERROR, "ClientError", id="wordless-client-error"
        ),
        pytest.param(
            RuntimeError("no"), ErrorKind.REQUEST_ERROR, "RuntimeError: no", id="anything-else"
        ),
    ],
)
def test_each_failure_is_named_by_its_kind(error: Exception, kind: ErrorKind, message: str) -> None:
    assert transport_failure(error, timeout_s=2.5) == TransportFailure(kind, message)


def test_an_unexpected_failure_is_told_in_at_most_500_characters() -> None:
    failure = transport_failure(ValueError("x" * 10_000), timeout_s=1.0)
    assert len(failure.message) == RESPONSE_ERROR_CHARS


async def test_a_failure_before_any_answer_is_a_transport_failure() -> None:
    session = FakeSession(error=aiohttp.ServerDisconnectedError())
    sent = await sender_with(session).send(claim_for(), timeout_s=SESSION_TIMEOUT_S)
    assert sent.result == TransportFailure(ErrorKind.RESET, "Server disconnected")


async def test_a_timeout_names_the_timeout_that_was_given() -> None:
    session = FakeSession(error=TimeoutError())
    sent = await sender_with(session).send(claim_for(), timeout_s=0.75)
    assert sent.result == TransportFailure(ErrorKind.TIMEOUT, "no answer within 0.75s")
