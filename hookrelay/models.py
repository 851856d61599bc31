"""The records hookrelay works with, as plain dataclasses (no driver types past storage)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hookrelay.statuses import DeliveryStatus, EndpointStatus, ErrorKind, SigningScheme


@dataclass(frozen=True)
class App:
    id: str
    name: str
    uid: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Endpoint:
    id: str
    app_id: str
    url: str
    description: str
    event_types: list[str] | None
    status: EndpointStatus
    disabled_reason: str | None
    signing: SigningScheme
    secret_ciphertext: bytes
    secret_key_id: str
    headers: dict[str, str]
    rate_limit_per_s: int | None
    created_at: datetime
    updated_at: datetime
    public_key: str | None = None  # whpk_ key of an Ed25519 endpoint
    previous_secret_expires_at: datetime | None = None  # a rotated-out secret signs until then


@dataclass(frozen=True)
class ApiKey:
    """An app's API key as listed: its prefix only, never the key or its hash."""

    id: str
    app_id: str
    prefix: str
    name: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class PortalSession:
    """A portal session as made (its token is shown once, never stored)."""

    id: str
    app_id: str
    capabilities: list[str]
    expires_at: datetime
    created_at: datetime


@dataclass(frozen=True)
class Credential:
    """What a stored credential (an app key or a portal session) opens: its app, and the names
    of its scopes or capabilities."""

    app_id: str
    names: list[str]
    expires_at: datetime | None  # a portal session's end; a key has none


@dataclass(frozen=True)
class Event:
    id: str
    app_id: str
    type: str
    job_id: str | None
    body: str
    created_at: datetime
    tx_id: int = 0  # the transaction that wrote it: (tx_id, id) is its place in the log

    @property
    def position(self) -> LogPosition:
        return (self.tx_id, self.id)


# A place in an app's event log, in commit order: (transaction id, event id). Every event of a
# transaction comes after (tx, "") and before (tx + 1, "").
LogPosition = tuple[int, str]
LOG_START: LogPosition = (0, "")


@dataclass(frozen=True)
class LogFilter:
    """Which events of an app's log a reader wants; None means any."""

    types: frozenset[str] | None = None
    job_id: str | None = None

    def matches(self, event: Event) -> bool:
        return (self.types is None or event.type in self.types) and (
            self.job_id is None or event.job_id == self.job_id
        )


@dataclass(frozen=True)
class LogRead:
    """A page of an app's log, and where the reader stands after it."""

    events: list[Event]
    position: LogPosition
    held_back: bool = False  # committed events wait behind a transaction still running
    more: bool = False  # the page was full (by count or bytes): more may follow at once


@dataclass(frozen=True)
class Delivery:
    id: str
    app_id: str
    event_id: str
    endpoint_id: str
    status: DeliveryStatus
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    event_type: str | None = None
    endpoint_url: str | None = None
    replay_of: str | None = None  # the original this is a replay of (never another replay)
    replayed_by: str | None = None  # the latest replay of this delivery
    recovered_by: str | None = None  # the first replay that succeeded, if this one was dead
    recovered_at: datetime | None = None


@dataclass(frozen=True)
class Attempt:
    id: str
    delivery_id: str
    attempt_number: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error_kind: ErrorKind | None
    error_message: str | None
    response_headers: dict[str, str] | None
    response_body: str | None


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery this worker holds the lease on, with all that sending it needs."""

    id: str
    app_id: str
    event_id: str
    endpoint_id: str
    status: DeliveryStatus  # SENDING, or HELD when the endpoint is not active
    attempt_count: int  # the number of this attempt, counting from 1
    previous_status: DeliveryStatus  # SENDING when an expired lease was taken over: a redelivery
    url: str
    signing: SigningScheme
    secret_ciphertext: bytes
    secret_key_id: str
    headers: dict[str, str]
    rate_limit_per_s: int | None
    previous_secret_ciphertext: bytes | None  # set while a rotated-out secret still signs
    previous_secret_key_id: str | None
    replay_of: str | None  # the original delivery, if this one is a replay
    # The event's, read apart from the claim: the fields above are the claim's columns.
    event_type: str
    body: str


@dataclass(frozen=True)
class AttemptOutcome:
    """What one attempt did, and the state the delivery moves to."""

    delivery_id: str
    attempt_number: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error_kind: ErrorKind | None
    error_message: str | None
    response_headers: dict[str, str] | None
    response_body: str | None
    next_status: DeliveryStatus
    next_attempt_at: datetime | None
    disable_endpoint: bool = False  # the receiver answered 410 Gone
    replay_of: str | None = None  # the original the delivery replays (recovered if it succeeds)


@dataclass(frozen=True)
class HealthPolicy:
    """When an endpoint that keeps failing is disabled."""

    disable_after_failing_s: float
    disable_after_dead: int


@dataclass(frozen=True)
class RecordedAttempt:
    """What recording an attempt changed."""

    delivery_status: DeliveryStatus
    endpoint_disabled_reason: str | None  # set when this attempt disabled the endpoint


@dataclass(frozen=True)
class DeliveryFilter:
    """What a delivery listing (or a bulk replay) is narrowed to; None means any."""

    status: DeliveryStatus | None = None
    endpoint_id: str | None = None
    event_type: str | None = None
    event_id: str | None = None
    job_id: str | None = None
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before
    # A listing's only: dead originals no replay has recovered (a bulk replay has its own rule,
    # which also leaves out those being replayed).
    lost: bool = False


@dataclass(frozen=True)
class EventFilter:
    type: str | None = None
    job_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class AttemptFilter:
    delivery_id: str | None = None
    endpoint_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class ReplayResult:
    matched: int  # deliveries that match the filter
    replayed: int  # new deliveries made (0 in a dry run)
    replayable: int  # matched deliveries whose endpoint is not disabled


@dataclass(frozen=True)
class Idempotency:
    """An Idempotency-Key sent with a request to a route, and how long it binds."""

    key: str
    request_hash: bytes
    ttl_s: float
    route: str  # "events" or "events/batch": one key on two routes is two keys

    @property
    def stored_key(self) -> str:
        """The key as stored: the route first, so that a key binds per route (the rows
        written before routes were told apart got theirs in migration 0008)."""
        return f"{self.route}:{self.key}"


@dataclass(frozen=True)
class EventWrite:
    """What one ingest request records: its events (of one app), its Idempotency-Key if it
    came with one, and the answer it gets (kept with the key)."""

    events: list[Event]
    idempotency: Idempotency | None
    answer: Any
