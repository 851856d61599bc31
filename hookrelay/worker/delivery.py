"""One delivery attempt: claim with a lease, sign, POST the exact bytes, record, schedule."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from functools import lru_cache

import aiohttp
import structlog
from yarl import URL

from hookrelay import retry
from hookrelay.models import AttemptOutcome, ClaimedDelivery
from hookrelay.outbound import BlockedAddress, literal_address_problem
from hookrelay.queue import DeliveryQueue
from hookrelay.secretbox import SecretBox
from hookrelay.settings import Settings
from hookrelay.signing import SigningKey, webhook_headers
from hookrelay.store import Store

log = structlog.get_logger(__name__)

# Response headers worth keeping with an attempt (the rest is noise for someone debugging).
KEPT_RESPONSE_HEADERS = ("content-type", "retry-after", "server", "x-request-id", "location")
MAX_HEADER_VALUE_CHARS = 256


@lru_cache(maxsize=4096)
def _signing_keys(
    box: SecretBox, ciphertext: bytes, key_id: str, endpoint_id: str
) -> list[SigningKey]:
    """Decrypt and decode an endpoint's secret once, not on every attempt."""
    return [SigningKey.from_secret(box.decrypt(ciphertext, key_id, endpoint_id))]


class Deliverer:
    """Sends deliveries; one instance per worker process, shared by its concurrent jobs."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        queue: DeliveryQueue,
        box: SecretBox,
        session: aiohttp.ClientSession,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.queue = queue
        self.box = box
        self.session = session
        self.rng = rng or random.Random()

    async def deliver(self, delivery_id: str) -> None:
        """Make one attempt at `delivery_id` if it is due and nobody else holds it."""
        claim = await self.store.claim_delivery(delivery_id, self.settings.lease_s)
        if claim is None:
            return  # not due, already claimed, or finished: another job got there first
        bound = log.bind(
            delivery_id=claim.id,
            event_id=claim.event_id,
            endpoint_id=claim.endpoint_id,
            attempt=claim.attempt_count,
        )
        if claim.status == "held":
            bound.info("delivery held: endpoint not active")
            return
        outcome, disable = await self._attempt(claim)
        if not await self.store.record_attempt(outcome):
            bound.warning("lease lost before the attempt was recorded")
            return
        bound.info(
            "delivery attempted",
            status=outcome.next_status,
            status_code=outcome.status_code,
            error_kind=outcome.error_kind,
            duration_ms=outcome.duration_ms,
        )
        if disable:
            await self.store.disable_endpoint(claim.endpoint_id, "the receiver answered 410 Gone")
            bound.warning("endpoint disabled: 410 Gone")
        if outcome.next_status == "retrying":
            await self.queue.enqueue(
                [(claim.id, claim.attempt_count)], defer_until=outcome.next_attempt_at
            )

    async def _attempt(self, claim: ClaimedDelivery) -> tuple[AttemptOutcome, bool]:
        body = claim.body.encode()
        keys = _signing_keys(
            self.box, claim.secret_ciphertext, claim.secret_key_id, claim.endpoint_id
        )
        headers = {
            **claim.headers,
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
        problem = literal_address_problem(URL(claim.url).host or "", self.settings.allowed_cidrs)
        try:
            if problem is not None:
                raise BlockedAddress(problem)
            async with self.session.post(
                claim.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                status_code = response.status
                response_headers = {
                    name: response.headers[name][:MAX_HEADER_VALUE_CHARS]
                    for name in KEPT_RESPONSE_HEADERS
                    if name in response.headers
                }
                raw = await response.content.read(self.settings.response_body_cap_bytes)
                response_body = raw.decode("utf-8", errors="replace")
        except BlockedAddress as exc:
            error_kind, error_message = "unsafe_target", str(exc)
        except TimeoutError:
            error_kind = "timeout"
            error_message = f"no answer within {self.settings.delivery_timeout_s:g}s"
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, BlockedAddress):
                error_kind, error_message = "unsafe_target", str(exc.os_error)
            else:
                error_kind, error_message = "connect", str(exc.os_error)
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, ConnectionError) as exc:
            error_kind, error_message = "reset", str(exc) or type(exc).__name__
        except aiohttp.ClientError as exc:
            error_kind, error_message = "http_error", str(exc) or type(exc).__name__
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
        outcome = AttemptOutcome(
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
        )
        return outcome, decision.disable_endpoint
