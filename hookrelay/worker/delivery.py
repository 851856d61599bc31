"""One delivery attempt: claim with a lease, sign, POST the exact bytes, record, schedule."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import TypeVar

import aiohttp
import structlog
from aiohttp.helpers import sentinel
from yarl import URL

from hookrelay import retry
from hookrelay.endpoint_headers import is_reserved
from hookrelay.live.notify import CommitNotifier, log_channel
from hookrelay.metrics import DeliveryMetrics
from hookrelay.models import AttemptOutcome, ClaimedDelivery, Event, HealthPolicy, RecordedAttempt
from hookrelay.operational import events_after_attempt
from hookrelay.outbound import BlockedAddress, connect_error_message
from hookrelay.queue import DeliveryQueue
from hookrelay.secretbox import SecretBox
from hookrelay.settings import Settings
from hookrelay.signing import SigningKey, webhook_headers
from hookrelay.ssrf import IPNetwork, literal_host_problem
from hookrelay.storage import Storage
from hookrelay.storage.db import is_transient
from hookrelay.worker.limits import EndpointLimits, Slots

log = structlog.get_logger(__name__)
T = TypeVar("T")

# Response headers worth keeping with an attempt (the rest is noise for someone debugging).
KEPT_RESPONSE_HEADERS = ("content-type", "retry-after", "server", "x-request-id", "location")
MAX_HEADER_VALUE_CHARS = 256
# A job waits this long for room among the deliveries in flight, then is put off whole.
SLOTS_WAIT_S = 5.0
# A claimed delivery that could not be sent (not an attempt) goes again after this.
UNSENT_RETRY_S = 1.0
# Recording an outcome is tried this many times.
RECORD_TRIES = 3
RESPONSE_ERROR_CHARS = 500
# A delivery whose endpoint already has its share of this process's deliveries waits this long
# for one to finish (enough for a fast endpoint), then is put off for about CONCURRENCY_RETRY_S.
CONCURRENCY_WAIT_S = 0.25
CONCURRENCY_RETRY_S = 0.5


@lru_cache(maxsize=4096)
def _signing_key(box: SecretBox, ciphertext: bytes, key_id: str, endpoint_id: str) -> SigningKey:
    """Decrypt and decode an endpoint's secret once, not on every attempt."""
    return SigningKey.from_secret(box.decrypt(ciphertext, key_id, endpoint_id))


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


async def _with_retries(record: Callable[[], Awaitable[T]]) -> T:
    """Record an outcome, trying again on a passing database failure: receivers have answered,
    and an unrecorded answer means sending again once the lease runs out."""
    for attempt in range(RECORD_TRIES - 1):
        try:
            return await record()
        except Exception as exc:
            if not is_transient(exc):
                raise
            await asyncio.sleep(0.2 * (attempt + 1))
    return await record()


def _printable(text: str) -> str:
    """Text Postgres can store: no NUL characters (a binary answer can hold them)."""
    return text.replace("\x00", "\ufffd")


Sent = tuple[ClaimedDelivery, AttemptOutcome]


def _bound_log(claim: ClaimedDelivery) -> structlog.stdlib.BoundLogger:
    bound: structlog.stdlib.BoundLogger = log.bind(
        delivery_id=claim.id,
        event_id=claim.event_id,
        endpoint_id=claim.endpoint_id,
        attempt=claim.attempt_count,
    )
    return bound


def _log_attempt(claim: ClaimedDelivery, outcome: AttemptOutcome, status: str) -> None:
    # Not through _bound_log: binding costs a logger per delivery even when INFO is off.
    # A dead letter needs someone to act (replay it, fix the endpoint): a warning, not news.
    (log.warning if status == "dead" else log.info)(
        "delivery dead-lettered" if status == "dead" else "delivery attempted",
        delivery_id=claim.id,
        event_id=claim.event_id,
        endpoint_id=claim.endpoint_id,
        attempt=claim.attempt_count,
        status=status,
        status_code=outcome.status_code,
        error_kind=outcome.error_kind,
        duration_ms=outcome.duration_ms,
    )


class Deferred(Exception):
    """The delivery may not start yet; try again after `delay_s`.

    `slot_reserved`: a slot of the endpoint's rate limit is reserved for that moment, so the
    next try must not take another.
    """

    def __init__(
        self, delivery_id: str, delay_s: float, attempts_made: int, slot_reserved: bool
    ) -> None:
        super().__init__(f"deferred by {delay_s:.3f}s")
        self.delivery_id = delivery_id
        self.delay_s = delay_s
        self.attempts_made = attempts_made
        self.slot_reserved = slot_reserved


class Deliverer:
    """Sends deliveries; one instance per worker process, shared by its concurrent jobs."""

    def __init__(
        self,
        settings: Settings,
        store: Storage,
        queue: DeliveryQueue,
        box: SecretBox,
        session: aiohttp.ClientSession,
        limits: EndpointLimits,
        metrics: DeliveryMetrics,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.queue = queue
        self.box = box
        self.session = session
        self.limits = limits
        self.metrics = metrics
        self.rng = rng or random.Random()
        self.health = HealthPolicy(settings.disable_after_failing_s, settings.disable_after_dead)
        # Operational events join the app's log: its live readers hear of them.
        self.notifier = CommitNotifier(queue.redis, log_channel(settings.queue_name))
        # Deliveries this process runs at once, across both lanes and batched jobs.
        self._running = Slots(settings.worker_concurrency + settings.retry_concurrency)

    async def deliver(self, delivery_ids: list[str], slot_reserved: bool = False) -> list[Deferred]:
        """Make one attempt at each delivery that is due and that nobody else holds: one
        statement claims them all, their requests run concurrently, and the first attempts that
        succeeded (most of them) are recorded together in one statement.

        Returns the deliveries an endpoint limit put off (their claims given back).
        """
        # Bounded: a job waiting longer would run into arq's job timeout. SlotsBusy puts the
        # whole job off, claimed nothing.
        async with self._running.take(len(delivery_ids), SLOTS_WAIT_S):
            claims = await self.store.deliveries.claim(delivery_ids, self.settings.lease_s)
            claimed_at = time.monotonic()
            sent = await asyncio.gather(
                *(self._send(claim, claimed_at, slot_reserved) for claim in claims),
                return_exceptions=True,
            )
            deferred = [result for result in sent if isinstance(result, Deferred)]
            for claim, result in zip(claims, sent, strict=True):
                if isinstance(result, BaseException) and not isinstance(result, Deferred):
                    # Not sent (a limit's Redis call failed, say): give the claim back so that
                    # the delivery goes again soon, without using up its attempt.
                    _bound_log(claim).warning("delivery not sent", error=repr(result))
                    with contextlib.suppress(Exception):
                        await self.store.deliveries.release(
                            claim.id, claim.attempt_count, UNSENT_RETRY_S
                        )
                        deferred.append(
                            Deferred(claim.id, UNSENT_RETRY_S, claim.attempt_count - 1, False)
                        )
            quiet: list[Sent] = []
            others: list[Sent] = []
            for result in sent:
                if isinstance(result, tuple):
                    claim, outcome = result
                    first_success = outcome.next_status == "succeeded" and claim.attempt_count == 1
                    (quiet if first_success else others).append(result)
            # Shielded: once receivers have answered, cancelling the job must not lose records.
            await asyncio.shield(
                asyncio.gather(self._record_quiet(quiet), *(self._record(c, o) for c, o in others))
            )
            return deferred

    async def _send(
        self, claim: ClaimedDelivery, claimed_at: float, slot_reserved: bool
    ) -> tuple[ClaimedDelivery, AttemptOutcome] | None:
        """Send one claimed delivery; None if it was put on hold. Raises Deferred."""
        if claim.status == "held":
            _bound_log(claim).info("delivery held: endpoint not active")
            return None
        if claim.previous_status == "sending":
            self.metrics.count("hookrelay_redeliveries_total")
            _bound_log(claim).warning("redelivering: the previous attempt's lease expired")
        if not await self.limits.start(claim.endpoint_id, CONCURRENCY_WAIT_S):
            await self._defer(
                claim, CONCURRENCY_RETRY_S * self.rng.uniform(0.5, 1.5), slot_reserved
            )
        try:
            if claim.rate_limit_per_s is not None and not slot_reserved:
                wait_s = await self.limits.reserve_rate_slot(
                    claim.endpoint_id, claim.rate_limit_per_s
                )
                if wait_s > 0:
                    await self._defer(claim, wait_s, slot_reserved=True)
            return claim, await self._attempt(claim, claimed_at)
        finally:
            self.limits.finish(claim.endpoint_id)

    async def _record_quiet(self, sent: list[Sent]) -> None:
        """Record first attempts that succeeded, all in one statement (no event can follow)."""
        if not sent:
            return
        recorded = await _with_retries(
            lambda: self.store.deliveries.record_successes([outcome for _, outcome in sent])
        )
        for claim, outcome in sent:
            if claim.id not in recorded:
                _bound_log(claim).warning("lease lost before the attempt was recorded")
                continue
            self.metrics.attempt("succeeded", outcome.duration_ms / 1000)
            _log_attempt(claim, outcome, "succeeded")

    async def _record(self, claim: ClaimedDelivery, outcome: AttemptOutcome) -> None:
        """Record any other attempt, with the endpoint's health and the operational events it
        calls for, in one transaction; then schedule the retry."""
        now = datetime.now(UTC)
        bound = _bound_log(claim)

        reported: list[Event] = []

        def follow_up(recorded: RecordedAttempt) -> list[Event]:
            reported[:] = events_after_attempt(
                claim, recorded, outcome.status_code, outcome.error_message, now
            )
            return reported

        recorded, due = await _with_retries(
            lambda: self.store.deliveries.record_attempt(outcome, self.health, follow_up)
        )
        if recorded is None:
            bound.warning("lease lost before the attempt was recorded")
            return
        self.metrics.attempt(recorded.delivery_status, outcome.duration_ms / 1000)
        _log_attempt(claim, outcome, recorded.delivery_status)
        if reported:
            self.notifier.committed(claim.app_id)
        if recorded.endpoint_disabled_reason is not None:
            bound.warning("endpoint disabled", reason=recorded.endpoint_disabled_reason)
        if recorded.delivery_status == "retrying":
            await self.queue.enqueue(
                [(claim.id, claim.attempt_count)], defer_until=outcome.next_attempt_at
            )
        if due:
            await self.queue.enqueue_first_attempts(due)

    async def _defer(self, claim: ClaimedDelivery, delay_s: float, slot_reserved: bool) -> None:
        """Give the claim back without using up the attempt, and raise Deferred."""
        await self.store.deliveries.release(claim.id, claim.attempt_count, delay_s)
        self.metrics.count("hookrelay_deferred_total")
        raise Deferred(claim.id, delay_s, claim.attempt_count - 1, slot_reserved)

    async def _attempt(self, claim: ClaimedDelivery, claimed_at: float) -> AttemptOutcome:
        body = claim.body.encode()
        keys = signing_keys(self.box, claim)
        headers = {
            **sendable_headers(claim.endpoint_id, claim.headers),
            "content-type": "application/json",
            **webhook_headers(keys, claim.event_id, int(time.time()), body),
        }
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        status_code: int | None = None
        error_kind: str | None = None
        error_message: str | None = None
        response_headers: dict[str, str] | None = None
        response_body: str | None = None
        timeout_s = self.settings.delivery_timeout_s
        try:
            # Inside the try: a stored URL yarl cannot parse (ValueError) is a failed attempt
            # like any request that cannot be made, so it uses up its attempts and dead-letters.
            problem = _literal_problem(claim.url, self.settings.allowed_cidrs)
            if problem is not None:
                raise BlockedAddress(problem)
            # The request must end while the lease holds, with time left to record it.
            # (The session's own timeout is the delivery timeout; a shorter one is set only when
            # the lease has less than that left.)
            lease_left_s = self.settings.lease_s - (time.monotonic() - claimed_at) - 2.0
            timeout_s = max(0.1, min(lease_left_s, self.settings.delivery_timeout_s))
            timeout = (
                aiohttp.ClientTimeout(total=timeout_s)
                if timeout_s < self.settings.delivery_timeout_s
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
                raw = await response.content.read(self.settings.response_body_cap_bytes)
                response_body = _printable(raw.decode("utf-8", errors="replace"))
        except BlockedAddress as exc:
            error_kind, error_message = "unsafe_target", str(exc)
        except TimeoutError:
            error_kind = "timeout"
            error_message = f"no answer within {timeout_s:.3g}s"
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, BlockedAddress):
                error_kind, error_message = "unsafe_target", str(exc.os_error)
            else:
                error_kind, error_message = "connect", connect_error_message(exc.os_error)
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, ConnectionError) as exc:
            error_kind, error_message = "reset", _printable(str(exc)) or type(exc).__name__
        except aiohttp.ClientError as exc:
            error_kind, error_message = "http_error", _printable(str(exc)) or type(exc).__name__
        except Exception as exc:  # a request that cannot even be made: still an attempt
            error_kind = "request_error"
            error_message = _printable(f"{type(exc).__name__}: {exc}")[:RESPONSE_ERROR_CHARS]
        duration_ms = round((time.perf_counter() - started) * 1000)
        if status_code is not None and not retry.is_success(status_code):
            error_kind, error_message = "http_status", f"the receiver answered {status_code}"
        now = datetime.now(UTC)
        decision = retry.decide(
            attempts_made=claim.attempt_count,
            status_code=status_code,
            retry_after_s=retry.parse_retry_after((response_headers or {}).get("retry-after"), now),
            schedule_s=self.settings.retry_schedule_s,
            now=now,
            rng=self.rng,
        )
        return AttemptOutcome(
            delivery_id=claim.id,
            attempt_number=claim.attempt_count,
            started_at=started_at,
            duration_ms=duration_ms,
            status_code=status_code,
            error_kind=error_kind,
            error_message=error_message,
            response_headers=response_headers,
            response_body=response_body,
            next_status=decision.status,
            next_attempt_at=decision.next_attempt_at,
            disable_endpoint=decision.disable_endpoint,
        )
