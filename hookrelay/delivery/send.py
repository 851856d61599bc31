"""Send one delivery: sign the exact bytes and POST them with the endpoint's headers, under a
timeout, never following a redirect. HTTP only: what the answer means is `outcome`'s to say."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import aiohttp
from aiohttp.helpers import sentinel
from yarl import URL

from hookrelay.delivery.log import log
from hookrelay.models import ClaimedDelivery
from hookrelay.signing.secretbox import SecretBox
from hookrelay.signing.webhooks import SigningKey, webhook_headers
from hookrelay.ssrf.headers import is_reserved
from hookrelay.ssrf.outbound import BlockedAddress, connect_error_message
from hookrelay.ssrf.rules import IPNetwork, literal_host_problem
from hookrelay.statuses import ErrorKind

# Response headers worth keeping with an attempt (the rest is noise for someone debugging).
KEPT_RESPONSE_HEADERS = ("content-type", "retry-after", "server", "x-request-id", "location")
MAX_HEADER_VALUE_CHARS = 256
# A request that cannot even be made is told in at most this many characters.
RESPONSE_ERROR_CHARS = 500


# The results below are plain (slotted, not frozen) dataclasses: two are built per delivery on
# the worker's hot path, and a frozen one costs about 0.7 µs more to build.


@dataclass(slots=True)
class TransportFailure:
    """Why no (whole) answer came: the request could not be made, connect, or finish."""

    kind: ErrorKind
    message: str


@dataclass(slots=True)
class Response:
    """The receiver answered, with any status."""

    status_code: int
    headers: dict[str, str]  # those of KEPT_RESPONSE_HEADERS it sent, values capped
    body: str | None  # the first bytes, as text; None if reading them failed (`cut_short`)
    cut_short: TransportFailure | None = None  # the connection failed after the status line


@dataclass(slots=True)
class Sent:
    """What one POST did, and when and how long it took."""

    started_at: datetime
    duration_ms: int
    result: Response | TransportFailure


class Sender:
    """POSTs deliveries through one client session (kept-alive connections, guarded DNS)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        box: SecretBox,
        allowed: tuple[IPNetwork, ...],
        session_timeout_s: float,
        body_cap_bytes: int,
    ) -> None:
        self.session = session
        self.box = box
        self.allowed = allowed
        self.session_timeout_s = session_timeout_s  # the session's own total timeout
        self.body_cap_bytes = body_cap_bytes

    async def send(self, claim: ClaimedDelivery, timeout_s: float) -> Sent:
        """POST a claimed delivery, signed, and give up after `timeout_s`. Raises only when the
        delivery cannot be signed (then no attempt was made)."""
        body = claim.body.encode()
        headers = {
            **sendable_headers(claim.endpoint_id, claim.headers),
            "content-type": "application/json",
            **webhook_headers(
                signing_keys(self.box, claim), claim.event_id, int(time.time()), body
            ),
        }
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        status_code: int | None = None
        response_headers: dict[str, str] = {}
        response_body: str | None = None
        try:
            # Inside the try: a stored URL yarl cannot parse (ValueError) is a failed attempt
            # like any request that cannot be made, so it uses up its attempts and dead-letters.
            problem = _literal_problem(claim.url, self.allowed)
            if problem is not None:
                raise BlockedAddress(problem)
            # A shorter timeout than the session's costs an object per request: only then.
            timeout = (
                aiohttp.ClientTimeout(total=timeout_s)
                if timeout_s < self.session_timeout_s
                else sentinel
            )
            async with self.session.post(
                claim.url, data=body, headers=headers, allow_redirects=False, timeout=timeout
            ) as response:
                status_code = response.status
                response_headers = {
                    name: response.headers[name][:MAX_HEADER_VALUE_CHARS]
                    for name in KEPT_RESPONSE_HEADERS
                    if name in response.headers
                }
                raw = await response.content.read(self.body_cap_bytes)
                response_body = _printable(raw.decode("utf-8", errors="replace"))
        except Exception as exc:  # a request that cannot even be made is still an attempt
            failure = transport_failure(exc, timeout_s)
            result: Response | TransportFailure = (
                failure
                if status_code is None
                else Response(status_code, response_headers, response_body, cut_short=failure)
            )
        else:
            assert status_code is not None  # set by the block that did not fail
            result = Response(status_code, response_headers, response_body)
        return Sent(started_at, round((time.perf_counter() - started) * 1000), result)


def transport_failure(exc: Exception, timeout_s: float) -> TransportFailure:
    """Name what went wrong with a request, for the tenant's attempt record (never an address
    the gateway's resolver found)."""
    if isinstance(exc, BlockedAddress):
        return TransportFailure(ErrorKind.UNSAFE_TARGET, str(exc))
    if isinstance(exc, TimeoutError):
        return TransportFailure(ErrorKind.TIMEOUT, f"no answer within {timeout_s:.3g}s")
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, BlockedAddress):
            return TransportFailure(ErrorKind.UNSAFE_TARGET, str(exc.os_error))
        return TransportFailure(ErrorKind.CONNECT, connect_error_message(exc.os_error))
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError | ConnectionError):
        return TransportFailure(ErrorKind.RESET, _printable(str(exc)) or type(exc).__name__)
    if isinstance(exc, aiohttp.ClientError):
        return TransportFailure(ErrorKind.HTTP_ERROR, _printable(str(exc)) or type(exc).__name__)
    message = _printable(f"{type(exc).__name__}: {exc}")[:RESPONSE_ERROR_CHARS]
    return TransportFailure(ErrorKind.REQUEST_ERROR, message)


def _printable(text: str) -> str:
    """Text Postgres can store: no NUL characters (a binary answer can hold them)."""
    return text.replace("\x00", "\ufffd")


@lru_cache(maxsize=4096)
def _signing_key(box: SecretBox, ciphertext: bytes, key_id: str, endpoint_id: str) -> SigningKey:
    """Decrypt and decode an endpoint's secret once, not on every attempt."""
    return SigningKey.from_secret(box.decrypt(ciphertext, key_id, endpoint_id))


def signing_keys(box: SecretBox, claim: ClaimedDelivery) -> list[SigningKey]:
    """The keys that sign a delivery: the endpoint's secret, and a rotated-out one still in its
    grace period (receivers then find one signature per secret)."""
    keys = [_signing_key(box, claim.secret_ciphertext, claim.secret_key_id, claim.endpoint_id)]
    if claim.previous_secret_ciphertext is not None and claim.previous_secret_key_id:
        keys.append(
            _signing_key(
                box,
                claim.previous_secret_ciphertext,
                claim.previous_secret_key_id,
                claim.endpoint_id,
            )
        )
    return keys


@lru_cache(maxsize=4096)
def _literal_problem(url: str, allowed: tuple[IPNetwork, ...]) -> str | None:
    """Why a URL whose host is an address may not be reached: an IP literal (aiohttp does not
    resolve literals, so the guarded resolver never sees them), a host with a colon that is no
    address, or a numeric IPv4 spelling (which, before aiohttp 3.14, it connected to as if it
    were a literal); None for names and allowed addresses. The host is `raw_host`, the one the
    connector connects to. Cached: the same URLs come back for every delivery. Raises
    ValueError for a URL yarl cannot parse (saved before registration asked yarl)."""
    return literal_host_problem(URL(url).raw_host or "", allowed)


def sendable_headers(endpoint_id: str, stored: Mapping[str, str]) -> Mapping[str, str]:
    """An endpoint's own headers without those the header rules refuse: rows saved before a
    rule existed keep them (a stored Expect would make the client wait for a 100 Continue).
    Most endpoints have none, and then this costs one test."""
    if not stored:
        return stored
    refused = tuple(name for name in stored if is_reserved(name))
    if not refused:
        return stored
    _warn_refused_headers(endpoint_id, refused)
    return {name: value for name, value in stored.items() if not is_reserved(name)}


@lru_cache(maxsize=4096)
def _warn_refused_headers(endpoint_id: str, names: tuple[str, ...]) -> None:
    """Say once per endpoint (and set of names) which stored headers are left out; the cache
    is what makes it once. Names only: a value can be a credential."""
    log.warning(
        "stored endpoint headers not sent: the header rules refuse them",
        endpoint_id=endpoint_id,
        headers=list(names),
    )
