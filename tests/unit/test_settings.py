"""Settings from HOOKRELAY_* variables: defaults, parsing, errors, secrets kept out of repr."""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import fields
from pathlib import Path

import pytest

from hookrelay.settings import LOOPBACK_NETWORKS, ConfigError, Settings, settings_table, variables

# Bytes chosen so that standard and URL-safe base64 differ (the encoding holds + and /).
SECRET_KEY = bytes([0xFB, 0xEF, 0xBE, 0xFF] * 8)
ADMIN_TOKEN = "hra_admin-token-do-not-log"
METRICS_TOKEN = "hrm_metrics-token-do-not-log"


def from_env(**variables: str) -> Settings:
    return Settings.from_env({f"HOOKRELAY_{name}": value for name, value in variables.items()})


# Defaults


def test_empty_environment_gives_the_defaults() -> None:
    assert Settings.from_env({}) == Settings()


def test_defaults_leave_urls_token_and_key_unset() -> None:
    settings = Settings.from_env({})
    assert settings.database_url is None
    assert settings.redis_url is None
    assert settings.admin_token is None
    assert settings.metrics_token is None
    assert settings.secret_key is None
    assert settings.allowed_cidrs == ()


def test_default_retry_schedule_and_limits() -> None:
    settings = Settings.from_env({})
    # 5s, 5m, 30m, 2h, 5h, 10h, 10h: about 28 hours of retries.
    assert settings.retry_schedule_s == (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
    assert settings.delivery_timeout_s == 15.0
    assert settings.max_payload_bytes == 256 * 1024
    assert settings.request_read_timeout_s == 30.0
    assert settings.log_format == "json"
    assert settings.log_level == "info"


def test_blank_variables_count_as_unset() -> None:
    assert from_env(DATABASE_URL="  ", RETRY_SCHEDULE="", LOG_FORMAT=" ") == Settings()


def test_variables_without_the_prefix_are_ignored() -> None:
    assert Settings.from_env({"DATABASE_URL": "postgresql://x/y", "LOG_FORMAT": "xml"}) == (
        Settings()
    )


# Each variable


@pytest.mark.parametrize(
    ("name", "attribute", "value"),
    [
        ("DATABASE_URL", "database_url", "postgresql://hookrelay@db:5432/hookrelay"),
        ("REDIS_URL", "redis_url", "redis://cache:6379/0"),
        ("ADMIN_TOKEN", "admin_token", ADMIN_TOKEN),
        ("METRICS_TOKEN", "metrics_token", METRICS_TOKEN),
        ("QUEUE_NAME", "queue_name", "hookrelay:test"),
    ],
)
def test_string_variable_is_read_as_is(name: str, attribute: str, value: str) -> None:
    assert getattr(from_env(**{name: value}), attribute) == value


def test_string_variable_is_stripped() -> None:
    assert from_env(REDIS_URL="  redis://cache:6379/0\n").redis_url == "redis://cache:6379/0"


@pytest.mark.parametrize(
    "encoded",
    [
        pytest.param(base64.b64encode(SECRET_KEY).decode(), id="standard"),
        pytest.param(base64.urlsafe_b64encode(SECRET_KEY).decode(), id="urlsafe"),
        pytest.param(base64.b64encode(SECRET_KEY).decode().rstrip("="), id="standard-unpadded"),
        pytest.param(
            base64.urlsafe_b64encode(SECRET_KEY).decode().rstrip("="), id="urlsafe-unpadded"
        ),
    ],
)
def test_secret_key_is_decoded_from_base64(encoded: str) -> None:
    assert from_env(SECRET_KEY=encoded).secret_key == SECRET_KEY


def test_standard_and_urlsafe_encodings_of_the_test_key_differ() -> None:
    assert base64.b64encode(SECRET_KEY) != base64.urlsafe_b64encode(SECRET_KEY)


def test_allowed_cidrs_are_a_comma_separated_list() -> None:
    settings = from_env(ALLOWED_CIDRS="127.0.0.0/8, ::1/128,10.1.2.0/24")
    assert settings.allowed_cidrs == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
        ipaddress.ip_network("10.1.2.0/24"),
    )


def test_allowed_cidr_with_host_bits_becomes_its_network() -> None:
    assert from_env(ALLOWED_CIDRS="10.1.2.3/24").allowed_cidrs == (
        ipaddress.ip_network("10.1.2.0/24"),
    )


def test_retry_schedule_is_a_list_of_durations() -> None:
    assert from_env(RETRY_SCHEDULE="50ms,100ms").retry_schedule_s == pytest.approx((0.05, 0.1))


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30.0), ("500ms", 0.5), ("2", 2.0)])
def test_delivery_timeout_is_a_duration(text: str, seconds: float) -> None:
    assert from_env(DELIVERY_TIMEOUT=text).delivery_timeout_s == pytest.approx(seconds)


def test_max_payload_bytes_is_an_integer() -> None:
    assert from_env(MAX_PAYLOAD_BYTES="1048576").max_payload_bytes == 1_048_576


@pytest.mark.parametrize(("text", "seconds"), [("10s", 10.0), ("1500ms", 1.5), ("45", 45.0)])
def test_request_read_timeout_is_a_duration(text: str, seconds: float) -> None:
    assert from_env(REQUEST_READ_TIMEOUT=text).request_read_timeout_s == pytest.approx(seconds)


def test_worker_concurrency_and_poll_delay_are_read() -> None:
    settings = from_env(WORKER_CONCURRENCY="8", WORKER_POLL_DELAY="20ms")
    assert settings.worker_concurrency == 8
    assert settings.worker_poll_delay_s == pytest.approx(0.02)


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_log_format_is_json_or_console(log_format: str) -> None:
    assert from_env(LOG_FORMAT=log_format).log_format == log_format


def test_log_level_is_lowercased() -> None:
    assert from_env(LOG_LEVEL="DEBUG").log_level == "debug"


# Bad values


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SECRET_KEY", base64.b64encode(bytes(16)).decode()),
        ("SECRET_KEY", base64.b64encode(bytes(33)).decode()),
        ("SECRET_KEY", "not base64!"),
        ("LOG_FORMAT", "xml"),
        ("DELIVERY_TIMEOUT", "0"),
        ("DELIVERY_TIMEOUT", "0ms"),
        ("DELIVERY_TIMEOUT", "-5s"),
        ("DELIVERY_TIMEOUT", "fast"),
        ("RETRY_SCHEDULE", "soon"),
        ("RETRY_SCHEDULE", "5s,later"),
        ("MAX_PAYLOAD_BYTES", "0"),
        ("MAX_PAYLOAD_BYTES", "-1"),
        ("MAX_PAYLOAD_BYTES", "1kb"),
        ("REQUEST_READ_TIMEOUT", "0s"),
        ("REQUEST_READ_TIMEOUT", "-1s"),
        ("REQUEST_READ_TIMEOUT", "slow"),
        ("WORKER_CONCURRENCY", "0"),
        ("WORKER_POLL_DELAY", "0s"),
        ("ALLOWED_CIDRS", "127.0.0.0/8,not-a-network"),
        ("ALLOWED_CIDRS", "10.0.0.0/33"),
    ],
)
def test_bad_value_raises_config_error_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"HOOKRELAY_{name}"):
        from_env(**{name: value})


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_secret_key_of_16_bytes_reports_its_length() -> None:
    with pytest.raises(ConfigError, match="32 bytes, not 16"):
        from_env(SECRET_KEY=base64.b64encode(bytes(16)).decode())


# Derived values and helpers


@pytest.mark.parametrize("timeout_s", [0.001, 0.5, 1.0, 10.0, 15.0, 60.0, 600.0, 3600.0])
def test_lease_is_always_longer_than_the_delivery_timeout(timeout_s: float) -> None:
    assert Settings(delivery_timeout_s=timeout_s).lease_s > timeout_s


def test_lease_leaves_at_least_five_seconds_beyond_the_timeout() -> None:
    assert Settings(delivery_timeout_s=1.0).lease_s >= 6.0


def test_with_allowed_adds_networks() -> None:
    extra = ipaddress.ip_network("10.0.0.0/8")
    assert Settings().with_allowed(extra).allowed_cidrs == (extra,)


def test_with_allowed_keeps_existing_networks_first() -> None:
    first = ipaddress.ip_network("10.0.0.0/8")
    settings = Settings(allowed_cidrs=(first,)).with_allowed(*LOOPBACK_NETWORKS)
    assert settings.allowed_cidrs == (first, *LOOPBACK_NETWORKS)


def test_with_allowed_does_not_duplicate_a_network_already_allowed() -> None:
    settings = Settings().with_allowed(*LOOPBACK_NETWORKS).with_allowed(*LOOPBACK_NETWORKS)
    assert settings.allowed_cidrs == LOOPBACK_NETWORKS


def test_with_allowed_given_the_same_network_twice_adds_it_once() -> None:
    settings = Settings().with_allowed(*LOOPBACK_NETWORKS, *LOOPBACK_NETWORKS)
    assert settings.allowed_cidrs == LOOPBACK_NETWORKS


def test_with_allowed_leaves_the_original_unchanged() -> None:
    original = Settings()
    original.with_allowed(*LOOPBACK_NETWORKS)
    assert original.allowed_cidrs == ()


@pytest.mark.parametrize(
    ("require", "variable"),
    [
        ("require_database_url", "HOOKRELAY_DATABASE_URL"),
        ("require_redis_url", "HOOKRELAY_REDIS_URL"),
        ("require_secret_key", "HOOKRELAY_SECRET_KEY"),
    ],
)
def test_require_raises_config_error_naming_the_unset_variable(require: str, variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        getattr(Settings(), require)()


@pytest.mark.parametrize(
    ("require", "settings", "expected"),
    [
        ("require_database_url", Settings(database_url="postgresql://db/h"), "postgresql://db/h"),
        ("require_redis_url", Settings(redis_url="redis://cache"), "redis://cache"),
        ("require_secret_key", Settings(secret_key=SECRET_KEY), SECRET_KEY),
    ],
)
def test_require_returns_the_value_when_set(
    require: str, settings: Settings, expected: object
) -> None:
    assert getattr(settings, require)() == expected


def test_require_database_url_refuses_an_empty_string() -> None:
    with pytest.raises(ConfigError, match="HOOKRELAY_DATABASE_URL"):
        Settings(database_url="").require_database_url()


# Secrets stay out of repr (and so out of logs)


def test_repr_does_not_show_the_secret_key() -> None:
    text = repr(Settings(secret_key=SECRET_KEY))
    assert "secret_key" not in text
    assert repr(SECRET_KEY) not in text
    assert base64.b64encode(SECRET_KEY).decode() not in text


def test_repr_does_not_show_the_admin_token() -> None:
    assert ADMIN_TOKEN not in repr(Settings(admin_token=ADMIN_TOKEN))


def test_repr_does_not_show_the_metrics_token() -> None:
    assert METRICS_TOKEN not in repr(Settings(metrics_token=METRICS_TOKEN))


@pytest.mark.parametrize(
    ("attribute", "url"),
    [
        ("database_url", "postgresql://hookrelay:s3cr3t-pa55@db:5432/hookrelay"),
        ("redis_url", "redis://:s3cr3t-pa55@cache:6379/0"),
    ],
)
def test_repr_does_not_show_passwords_in_urls(attribute: str, url: str) -> None:
    assert "s3cr3t-pa55" not in repr(Settings(**{attribute: url}))


# One declaration per setting: the environment, the errors and the README come from it

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_configuration_table_is_the_one_made_from_the_declarations() -> None:
    text = README.read_text()
    start = text.index("| Variable | Default | Meaning |")
    table = text[start : text.index("\n\n", start) + 1]
    assert table == settings_table()


def test_every_setting_but_the_fixed_ones_has_a_variable() -> None:
    fixed = {"response_body_cap_bytes"}
    assert set(variables()) == {f.name for f in fields(Settings)} - fixed


def test_variable_names_are_unique_and_prefixed() -> None:
    names = [declared.env for declared in variables().values()]
    assert len(names) == len(set(names))
    assert all(name.startswith("HOOKRELAY_") for name in names)


@pytest.mark.parametrize("name", [name for name, v in variables().items() if v.default])
def test_a_variable_set_to_its_own_default_gives_the_default(name: str) -> None:
    declared = variables()[name]
    assert declared.default is not None
    settings = Settings.from_env({declared.env: declared.default})
    assert getattr(settings, name) == getattr(Settings(), name)


def test_log_format_error_lists_the_choices() -> None:
    with pytest.raises(ConfigError) as caught:
        from_env(LOG_FORMAT="xml")
    assert str(caught.value) == "HOOKRELAY_LOG_FORMAT must be json or console"


def test_a_parse_error_names_the_variable_then_the_reason() -> None:
    with pytest.raises(ConfigError) as caught:
        from_env(DELIVERY_TIMEOUT="0s")
    assert str(caught.value) == "HOOKRELAY_DELIVERY_TIMEOUT: must be greater than zero"


@pytest.mark.parametrize(
    ("name", "value", "attribute", "expected"),
    [
        ("DEMO_PAGE", "yes", "demo_page", True),
        ("DEMO_PAGE", "OFF", "demo_page", False),
        ("RETENTION", "7d", "retention_s", 7 * 86400.0),
        ("SWEEP_GRACE", "0", "sweep_grace_s", 0.0),
        ("SECRET_ROTATION_GRACE", "1h", "secret_rotation_grace_s", 3600.0),
        ("MAX_STREAMS_PER_APP", "3", "max_streams_per_app", 3),
        ("STREAM_TOKEN_TTL", "90s", "stream_token_ttl_s", 90.0),
        ("DISABLE_AFTER_DEAD", "2", "disable_after_dead", 2),
    ],
)
def test_more_variables_are_read(name: str, value: str, attribute: str, expected: object) -> None:
    assert getattr(from_env(**{name: value}), attribute) == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEMO_PAGE", "maybe"),
        ("RETENTION", "0d"),
        ("OLD_SECRET_KEYS", "short"),
        ("STREAM_HEARTBEAT", "-"),
    ],
)
def test_more_bad_values_raise_config_error_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"^HOOKRELAY_{name}"):
        from_env(**{name: value})
