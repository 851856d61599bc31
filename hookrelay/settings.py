"""One settings object, built at the edge from the environment and passed down explicitly."""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from hookrelay.durations import parse_duration, parse_duration_list
from hookrelay.secretbox import SecretBox

T = TypeVar("T")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
LogFormat = Literal["json", "console"]

# Delays after the immediate first attempt: about 28 hours of retries in all.
DEFAULT_RETRY_SCHEDULE_S = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
DELIVERY_TIMEOUT_S = 15.0
MAX_PAYLOAD_BYTES = 256 * 1024
# A client has this long to send a request's headers (from connecting, or from the previous
# answer on a kept-alive connection) and then this long again for its body; a kept-alive
# connection idle this long is closed. Slow or stalled clients cannot hold a connection open.
REQUEST_READ_TIMEOUT_S = 30.0
RESPONSE_BODY_CAP_BYTES = 4096
# Concurrent deliveries one worker process runs; most of their time is spent waiting on I/O.
WORKER_CONCURRENCY = 256
# How often an idle worker asks Redis for due jobs: the floor of ingest-to-delivery latency.
WORKER_POLL_DELAY_S = 0.005
# Retries run in their own lane, so a failing endpoint's retries never delay first attempts.
RETRY_CONCURRENCY = 64
# Deliveries to one endpoint that one worker process runs at once: a slow endpoint cannot take
# the whole pool.
ENDPOINT_CONCURRENCY = 32
QUEUE_NAME = "hookrelay:deliveries"
# The sweeper re-enqueues work that is due but may have lost its job; a delivery must be overdue
# this long first, so that it does not race the API's own enqueue.
SWEEP_INTERVAL_S = 2.0
SWEEP_GRACE_S = 5.0
# An endpoint is disabled after failing this long without a success, or after this many
# deliveries in a row were dead-lettered.
DISABLE_AFTER_FAILING_S = 5 * 86400.0
DISABLE_AFTER_DEAD = 20
# After a secret rotation the old secret signs beside the new one for this long.
SECRET_ROTATION_GRACE_S = 24 * 3600.0
# Events (with their deliveries and attempts) are kept this long.
RETENTION_S = 30 * 86400.0

# Streams (SSE): a comment this often keeps idle connections open through proxies; a client that
# takes longer than the send timeout to accept more is dropped (it resumes with Last-Event-ID).
STREAM_HEARTBEAT_S = 15.0
STREAM_SEND_TIMEOUT_S = 10.0
MAX_STREAMS_PER_APP = 500
# Stream tokens (for EventSource in browsers) are valid this long unless the issuer asks less.
STREAM_TOKEN_TTL_S = 900.0

LOOPBACK_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)


class ConfigError(ValueError):
    """A setting in the environment has a value hookrelay cannot use."""


@dataclass(frozen=True)
class Settings:
    """Everything configurable about hookrelay; see the README for each variable."""

    # repr=False: URLs may hold passwords, and no token may reach a log line.
    database_url: str | None = field(default=None, repr=False)
    redis_url: str | None = field(default=None, repr=False)
    admin_token: str | None = field(default=None, repr=False)
    # When set, GET /metrics needs it as a bearer token; unset, /metrics is open.
    metrics_token: str | None = field(default=None, repr=False)
    secret_key: bytes | None = field(default=None, repr=False)
    # Keys secrets may still be sealed with, during a key rotation (see `hookrelay rotate-key`).
    old_secret_keys: tuple[bytes, ...] = field(default=(), repr=False)
    allowed_cidrs: tuple[IPNetwork, ...] = ()
    retry_schedule_s: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE_S
    delivery_timeout_s: float = DELIVERY_TIMEOUT_S
    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    request_read_timeout_s: float = REQUEST_READ_TIMEOUT_S
    response_body_cap_bytes: int = RESPONSE_BODY_CAP_BYTES
    worker_concurrency: int = WORKER_CONCURRENCY
    worker_poll_delay_s: float = WORKER_POLL_DELAY_S
    retry_concurrency: int = RETRY_CONCURRENCY
    endpoint_concurrency: int = ENDPOINT_CONCURRENCY
    queue_name: str = QUEUE_NAME
    sweep_interval_s: float = SWEEP_INTERVAL_S
    sweep_grace_s: float = SWEEP_GRACE_S
    disable_after_failing_s: float = DISABLE_AFTER_FAILING_S
    disable_after_dead: int = DISABLE_AFTER_DEAD
    secret_rotation_grace_s: float = SECRET_ROTATION_GRACE_S
    retention_s: float = RETENTION_S
    stream_heartbeat_s: float = STREAM_HEARTBEAT_S
    stream_send_timeout_s: float = STREAM_SEND_TIMEOUT_S
    max_streams_per_app: int = MAX_STREAMS_PER_APP
    stream_token_ttl_s: float = STREAM_TOKEN_TTL_S
    demo_page: bool = False  # serve the live job page at /demo (hookrelay dev turns it on)
    log_format: LogFormat = "json"
    log_level: str = "info"

    @property
    def lease_s(self) -> float:
        """How long a claimed delivery stays claimed: always longer than the HTTP timeout."""
        return self.delivery_timeout_s + max(5.0, self.delivery_timeout_s * 0.5)

    def require_database_url(self) -> str:
        if not self.database_url:
            raise ConfigError("HOOKRELAY_DATABASE_URL is not set")
        return self.database_url

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise ConfigError("HOOKRELAY_REDIS_URL is not set")
        return self.redis_url

    def require_secret_key(self) -> bytes:
        if self.secret_key is None:
            raise ConfigError(
                "HOOKRELAY_SECRET_KEY is not set (32 random bytes, base64: "
                "python -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())')"
            )
        return self.secret_key

    def all_secret_keys(self) -> tuple[bytes, ...]:
        """The current secret key, then the old ones still accepted."""
        return (self.require_secret_key(), *self.old_secret_keys)

    def secret_box(self) -> SecretBox:
        """The box that seals secrets with the current key and opens them with any listed."""
        return SecretBox(self.require_secret_key(), self.old_secret_keys)

    def secret_values(self) -> tuple[str, ...]:
        """Every configured secret, in each text form it may take, for the logs to redact."""
        values: list[str] = [self.admin_token or "", self.metrics_token or ""]
        for url in filter(None, (self.database_url, self.redis_url)):
            try:
                values.append(urlsplit(url).password or "")
            except ValueError:  # unparsable, so its password cannot be told apart: all of it
                values.append(url)
        for key in (self.secret_key, *self.old_secret_keys):
            if key is not None:
                for text in (base64.b64encode(key), base64.urlsafe_b64encode(key)):
                    values += [text.decode(), text.decode().rstrip("=")]
        return tuple(value for value in values if value)

    def with_allowed(self, *networks: IPNetwork) -> Settings:
        """Return a copy that also allows callbacks to `networks`."""
        extra = tuple(dict.fromkeys(net for net in networks if net not in self.allowed_cidrs))
        return replace(self, allowed_cidrs=self.allowed_cidrs + extra)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build settings from HOOKRELAY_* variables; raise ConfigError naming a bad one."""
        defaults = cls()

        def get(name: str) -> str | None:
            value = env.get(f"HOOKRELAY_{name}")
            return value.strip() if value and value.strip() else None

        def parsed(name: str, parse: Callable[[str], T], default: T) -> T:
            raw = get(name)
            if raw is None:
                return default
            try:
                return parse(raw)
            except ValueError as exc:
                raise ConfigError(f"HOOKRELAY_{name}: {exc}") from exc

        log_format = get("LOG_FORMAT") or defaults.log_format
        if log_format not in ("json", "console"):
            raise ConfigError("HOOKRELAY_LOG_FORMAT must be json or console")
        return cls(
            database_url=get("DATABASE_URL"),
            redis_url=get("REDIS_URL"),
            admin_token=get("ADMIN_TOKEN"),
            metrics_token=get("METRICS_TOKEN"),
            secret_key=parsed("SECRET_KEY", parse_secret_key, None),
            old_secret_keys=parsed("OLD_SECRET_KEYS", parse_secret_keys, ()),
            allowed_cidrs=parsed("ALLOWED_CIDRS", parse_cidrs, ()),
            retry_schedule_s=parsed(
                "RETRY_SCHEDULE", parse_duration_list, DEFAULT_RETRY_SCHEDULE_S
            ),
            delivery_timeout_s=parsed(
                "DELIVERY_TIMEOUT", _positive(parse_duration), defaults.delivery_timeout_s
            ),
            max_payload_bytes=parsed(
                "MAX_PAYLOAD_BYTES", _positive_int, defaults.max_payload_bytes
            ),
            request_read_timeout_s=parsed(
                "REQUEST_READ_TIMEOUT",
                _positive(parse_duration),
                defaults.request_read_timeout_s,
            ),
            worker_concurrency=parsed(
                "WORKER_CONCURRENCY", _positive_int, defaults.worker_concurrency
            ),
            worker_poll_delay_s=parsed(
                "WORKER_POLL_DELAY", _positive(parse_duration), defaults.worker_poll_delay_s
            ),
            retry_concurrency=parsed(
                "RETRY_CONCURRENCY", _positive_int, defaults.retry_concurrency
            ),
            endpoint_concurrency=parsed(
                "ENDPOINT_CONCURRENCY", _positive_int, defaults.endpoint_concurrency
            ),
            queue_name=get("QUEUE_NAME") or defaults.queue_name,
            sweep_interval_s=parsed(
                "SWEEP_INTERVAL", _positive(parse_duration), defaults.sweep_interval_s
            ),
            sweep_grace_s=parsed("SWEEP_GRACE", parse_duration, defaults.sweep_grace_s),
            disable_after_failing_s=parsed(
                "DISABLE_AFTER_FAILING",
                _positive(parse_duration),
                defaults.disable_after_failing_s,
            ),
            disable_after_dead=parsed(
                "DISABLE_AFTER_DEAD", _positive_int, defaults.disable_after_dead
            ),
            secret_rotation_grace_s=parsed(
                "SECRET_ROTATION_GRACE", parse_duration, defaults.secret_rotation_grace_s
            ),
            retention_s=parsed("RETENTION", _positive(parse_duration), defaults.retention_s),
            stream_heartbeat_s=parsed(
                "STREAM_HEARTBEAT", _positive(parse_duration), defaults.stream_heartbeat_s
            ),
            stream_send_timeout_s=parsed(
                "STREAM_SEND_TIMEOUT", _positive(parse_duration), defaults.stream_send_timeout_s
            ),
            max_streams_per_app=parsed(
                "MAX_STREAMS_PER_APP", _positive_int, defaults.max_streams_per_app
            ),
            stream_token_ttl_s=parsed(
                "STREAM_TOKEN_TTL", _positive(parse_duration), defaults.stream_token_ttl_s
            ),
            demo_page=parsed("DEMO_PAGE", parse_flag, defaults.demo_page),
            log_format=log_format,  # type: ignore[arg-type]
            log_level=(get("LOG_LEVEL") or defaults.log_level).lower(),
        )


def parse_flag(text: str) -> bool:
    lowered = text.lower()
    if lowered not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ValueError("must be true or false")
    return lowered in ("1", "true", "yes", "on")


def parse_secret_key(text: str) -> bytes:
    """Decode a base64 (standard or URL-safe) key of exactly 32 bytes."""
    padded = text + "=" * (-len(text) % 4)
    try:
        key = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("must be base64") from exc
    if len(key) != 32:
        raise ValueError(f"must decode to 32 bytes, not {len(key)}")
    return key


def parse_secret_keys(text: str) -> tuple[bytes, ...]:
    """Parse comma-separated base64 keys of 32 bytes each."""
    return tuple(parse_secret_key(part.strip()) for part in text.split(",") if part.strip())


def parse_cidrs(text: str) -> tuple[IPNetwork, ...]:
    """Parse a comma-separated list of networks (`127.0.0.0/8, ::1/128`)."""
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()
    )


def _positive(parse: Callable[[str], float]) -> Callable[[str], float]:
    def parse_positive(text: str) -> float:
        value = parse(text)
        if value <= 0:
            raise ValueError("must be greater than zero")
        return value

    return parse_positive


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be greater than zero")
    return value
