"""The named states and kinds of hookrelay's records, declared once.

Each is a `StrEnum`, so its members compare equal to, and serialise as, the strings stored in
Postgres and shown in the API; the migrations' CHECK constraints hold the same values (a test
compares them)."""

from __future__ import annotations

from enum import StrEnum


class DeliveryStatus(StrEnum):
    """Where one event's delivery to one endpoint stands."""

    PENDING = "pending"  # written at ingest, waiting for its first attempt
    SENDING = "sending"  # claimed by a worker, under a lease
    RETRYING = "retrying"  # failed; next attempt at next_attempt_at
    SUCCEEDED = "succeeded"
    DEAD = "dead"  # every attempt failed: dead-lettered, replayable
    HELD = "held"  # its endpoint is paused or disabled; sent on resume
    CANCELLED = "cancelled"


class EndpointStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"  # by its owner
    DISABLED = "disabled"  # by hookrelay (410 Gone, or failing too long), with a reason


class SigningScheme(StrEnum):
    HMAC = "hmac"  # v1, whsec_ secrets
    ED25519 = "ed25519"  # v1a, whsk_/whpk_ keys


class ErrorKind(StrEnum):
    """Why an attempt failed, as recorded on the attempt."""

    UNSAFE_TARGET = "unsafe_target"  # the URL or its address is refused by the SSRF rules
    TIMEOUT = "timeout"
    CONNECT = "connect"
    RESET = "reset"
    HTTP_ERROR = "http_error"  # the answer was not valid HTTP
    REQUEST_ERROR = "request_error"
    HTTP_STATUS = "http_status"  # the receiver answered, not with a 2xx
