"""One settings object, built at the edge from the environment and passed down explicitly.

Each setting is declared once, below: its field, its HOOKRELAY_* variable, its default as written
in the environment, its parser and its meaning. `from_env`, the error messages and the README's
configuration table are made from those declarations."""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Literal, cast, get_args
from urllib.parse import urlsplit

from hookrelay.durations import parse_duration, parse_duration_list
from hookrelay.signing.secretbox import SecretBox
from hookrelay.variables import (
    METADATA_KEY,
    ConfigError,
    IPNetwork,
    Variable,
    parse_cidrs,
    parse_flag,
    parse_positive_duration,
    parse_positive_int,
    parse_public_url,
    parse_secret_key,
    parse_secret_keys,
    parse_text,
    parse_whole_minutes,
    setting,
)

__all__ = ["LOOPBACK_NETWORKS", "ConfigError", "Settings", "settings_table", "variables"]

LogFormat = Literal["json", "console"]

# The first bytes of a receiver's answer kept on its attempt (not configurable).
RESPONSE_BODY_CAP_BYTES = 4096
LOOPBACK_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)


@dataclass(frozen=True)
class Settings:
    """Everything configurable about hookrelay: each field is one HOOKRELAY_* variable (its
    default, parser and meaning, declared once here), the README's table is made from them."""

    # Secret fields stay out of repr: URLs may hold passwords, and no token may reach a log line.
    database_url: str | None = setting(
        "DATABASE_URL", None, parse_text, "Postgres URL", note="(dev: embedded)", secret=True
    )
    redis_url: str | None = setting(
        "REDIS_URL", None, parse_text, "Redis URL", note="(dev: embedded)", secret=True
    )
    admin_token: str | None = setting(
        "ADMIN_TOKEN",
        None,
        parse_text,
        "the admin bearer token",
        note="(dev: generated, kept in the data dir)",
        secret=True,
    )
    metrics_token: str | None = setting(
        "METRICS_TOKEN",
        None,
        parse_text,
        "the bearer token `GET /metrics` needs, when set",
        note="(`/metrics` open)",
        secret=True,
    )
    secret_key: bytes | None = setting(
        "SECRET_KEY",
        None,
        parse_secret_key,
        "32 random bytes, base64; encrypts endpoint secrets at rest (AES-GCM)",
        note="(dev: generated, kept in the data dir)",
        secret=True,
    )
    old_secret_keys: tuple[bytes, ...] = setting(
        "OLD_SECRET_KEYS",
        "",
        parse_secret_keys,
        "earlier secret keys, comma-separated, while `hookrelay rotate-key` moves secrets to the"
        " new one",
        secret=True,
    )
    allowed_cidrs: tuple[IPNetwork, ...] = setting(
        "ALLOWED_CIDRS",
        "",
        parse_cidrs,
        "networks callbacks may reach despite the SSRF rules, e.g. `10.1.0.0/16`",
    )
    # About 28 hours of retries after the immediate first attempt.
    retry_schedule_s: tuple[float, ...] = setting(
        "RETRY_SCHEDULE",
        "5s,5m,30m,2h,5h,10h,10h",
        parse_duration_list,
        "delays after the first attempt",
    )
    delivery_timeout_s: float = setting(
        "DELIVERY_TIMEOUT",
        "15s",
        parse_positive_duration,
        "the HTTP timeout of one attempt; leases are longer",
    )
    max_payload_bytes: int = setting(
        "MAX_PAYLOAD_BYTES",
        str(256 * 1024),
        parse_positive_int,
        "the largest request body the API accepts",
    )
    # Slow or stalled clients cannot hold a connection open.
    request_read_timeout_s: float = setting(
        "REQUEST_READ_TIMEOUT",
        "30s",
        parse_positive_duration,
        "how long a client may take to send a request's headers, and again its body; idle"
        " kept-alive connections close after it",
    )
    # Most of a delivery's time is spent waiting on I/O, so one process runs many at once.
    worker_concurrency: int = setting(
        "WORKER_CONCURRENCY",
        "256",
        parse_positive_int,
        "first attempts one worker process runs at once",
    )
    # Retries run in their own lane, so a failing endpoint's retries never delay first attempts.
    retry_concurrency: int = setting(
        "RETRY_CONCURRENCY", "64", parse_positive_int, "retries one worker process runs at once"
    )
    # A slow endpoint cannot take the whole pool.
    endpoint_concurrency: int = setting(
        "ENDPOINT_CONCURRENCY",
        "32",
        parse_positive_int,
        "deliveries to one endpoint one worker process runs at once",
    )
    # Without a success for this long, or after this many dead deliveries in a row.
    disable_after_dead: int = setting(
        "DISABLE_AFTER_DEAD",
        "20",
        parse_positive_int,
        "dead deliveries in a row that disable an endpoint",
    )
    disable_after_failing_s: float = setting(
        "DISABLE_AFTER_FAILING",
        "5d",
        parse_positive_duration,
        "how long an endpoint may fail every attempt before it is disabled",
    )
    # The sweeper re-enqueues work that is due but may have lost its job; a delivery must be
    # overdue by the grace first, so that it does not race the API's own enqueue.
    sweep_interval_s: float = setting(
        "SWEEP_INTERVAL", "2s", parse_positive_duration, "how often the sweeper scans Postgres"
    )
    sweep_grace_s: float = setting(
        "SWEEP_GRACE",
        "5s",
        parse_duration,
        "how overdue a delivery must be before the sweeper re-enqueues it",
    )
    # A worker looks for tasks when told that some came (see broker/consumer.py); this is how
    # soon it looks again when a poll read as many due tasks as it reads at once.
    worker_poll_delay_s: float = setting(
        "WORKER_POLL_DELAY",
        "5ms",
        parse_positive_duration,
        "how soon a worker looks again when a poll found as many due tasks as it reads at once"
        " (otherwise it is told when tasks come)",
    )
    queue_name: str = setting(
        "QUEUE_NAME",
        "hookrelay:deliveries",
        parse_text,
        "the first-attempt arq queue, and the prefix of every other Redis name: `:retries`, the"
        " pub/sub channels `:log` (log notices), `:revoked` (key revocations) and `:due`,"
        " `:retries:due` (tasks coming due), `:metrics`,"
        " `:rate:<endpoint>` (all in `hookrelay/broker/keys.py`)",
    )
    # Streams (SSE): the heartbeat keeps idle connections open through proxies; a client that
    # takes longer than the send timeout is dropped (it resumes with Last-Event-ID).
    stream_heartbeat_s: float = setting(
        "STREAM_HEARTBEAT",
        "15s",
        parse_positive_duration,
        "the comment an idle event stream sends to stay open",
    )
    stream_send_timeout_s: float = setting(
        "STREAM_SEND_TIMEOUT",
        "10s",
        parse_positive_duration,
        "how long a stream client may take no data before it is dropped",
    )
    max_streams_per_app: int = setting(
        "MAX_STREAMS_PER_APP",
        "500",
        parse_positive_int,
        "open event streams per app per API process",
    )
    # For EventSource in browsers.
    stream_token_ttl_s: float = setting(
        "STREAM_TOKEN_TTL",
        "15m",
        parse_positive_duration,
        "how long a stream token is valid unless the request asks less",
    )
    public_url: str = setting(
        "PUBLIC_URL",
        "",
        parse_public_url,
        "where users reach the API (`https://hooks.example.com`), for the links portal "
        "sessions give; unset, the scheme and host each request was made to",
    )
    secret_rotation_grace_s: float = setting(
        "SECRET_ROTATION_GRACE",
        "24h",
        parse_duration,
        "how long an endpoint's old secret keeps signing beside the new one after `rotate-secret`",
    )
    retention_s: float = setting(
        "RETENTION",
        "30d",
        parse_positive_duration,
        "how long events, their deliveries and their attempts are kept",
    )
    partition_interval_s: float = setting(
        "PARTITION_INTERVAL",
        "1d",
        parse_whole_minutes,
        "the time each partition of the event log holds; retention drops whole partitions",
    )
    demo_page: bool = setting(
        "DEMO_PAGE",
        "false",
        parse_flag,
        "serve the live job page at `/demo`",
        note="(`true` in dev)",
    )
    log_format: LogFormat = setting(  # noqa: RUF009 (a Field, as the others: ruff sees a call)
        "LOG_FORMAT",
        "json",
        lambda text: cast(LogFormat, text),
        "`json` or `console`",
        note="(`console` in dev)",
        choices=get_args(LogFormat),
    )
    log_level: str = setting(
        "LOG_LEVEL",
        "info",
        str.lower,
        "the least severe level logged: `debug`, `info`, `warning`, `error` or `critical`",
    )
    response_body_cap_bytes: int = RESPONSE_BODY_CAP_BYTES

    @property
    def lease_s(self) -> float:
        """How long a claimed delivery stays claimed: always longer than the HTTP timeout."""
        return self.delivery_timeout_s + max(5.0, self.delivery_timeout_s * 0.5)

    def require_database_url(self) -> str:
        if not self.database_url:
            raise ConfigError(f"{variable('database_url').env} is not set")
        return self.database_url

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise ConfigError(f"{variable('redis_url').env} is not set")
        return self.redis_url

    def require_secret_key(self) -> bytes:
        if self.secret_key is None:
            raise ConfigError(
                f"{variable('secret_key').env} is not set (32 random bytes, base64: "
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
        """Build settings from HOOKRELAY_* variables (blank ones count as unset); raise
        ConfigError naming a bad one."""
        values = {}
        for name, declared in variables().items():
            raw = env.get(declared.env, "").strip()
            if raw:
                values[name] = declared.read(raw)
        return cls(**values)


def variables() -> dict[str, Variable]:
    """Every setting read from the environment, by field name, in declaration order."""
    return {
        f.name: f.metadata[METADATA_KEY] for f in fields(Settings) if METADATA_KEY in f.metadata
    }


def variable(name: str) -> Variable:
    """The environment variable of Settings field `name`."""
    return variables()[name]


def settings_table() -> str:
    """The README's configuration table (Markdown), made from the declarations."""
    header = "| Variable | Default | Meaning |\n| --- | --- | --- |\n"
    return header + "".join(declared.table_row() + "\n" for declared in variables().values())
