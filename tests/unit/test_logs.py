"""The log redactor: every credential shape, in every part of a line, from every logger."""

from __future__ import annotations

import base64
import io
import json
import logging
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from hookrelay.live.tokens import StreamGrant, issue_token
from hookrelay.logs import REDACTED, Redactor, configure_logging
from hookrelay.services.auth import new_app_key
from hookrelay.settings import Settings
from hookrelay.signing import webhooks

# Each credential as hookrelay makes it.
APP_KEY = new_app_key()
STREAM_TOKEN = issue_token(bytes(32), StreamGrant("app_1", "job_1", 1_900_000_000))
DEV_ADMIN_TOKEN = "hra_Qm9vdHN0cmFwIHRva2VuIGZvciBkZXYgbW9kZQ"  # as hookrelay dev makes one
HMAC_SECRET = webhooks.generate_hmac_secret()
ED25519_SECRET = webhooks.generate_ed25519_secret()
HMAC_SIGNATURE = webhooks.SigningKey.from_secret(HMAC_SECRET).sign("msg_1", 1_700_000_000, b"{}")
ED25519_SIGNATURE = webhooks.SigningKey.from_secret(ED25519_SECRET).sign(
    "msg_1", 1_700_000_000, b"{}"
)
ADMIN_TOKEN = "acceptance-admin-token"  # no shape: found because it is configured

# Every credential shape, and a line it may arrive in.
SHAPED = [
    (APP_KEY, f"Authorization: Bearer {APP_KEY}\\x01"),
    (APP_KEY, f"b'G{APP_KEY}T / HTTP/1.1'"),  # glued to a method by a broken request line
    (APP_KEY, f"b'{APP_KEY}\\x01: y'"),  # a header name
    (APP_KEY, f"b'zz{APP_KEY}'"),  # a chunk size
    (STREAM_TOKEN, f"GET /v1/apps/app_1/events/stream?token={STREAM_TOKEN} x HTTP/1.1"),
    (STREAM_TOKEN, f"bytearray(b'/?token={STREAM_TOKEN[:60]}...')"),  # cut short by aiohttp
    (DEV_ADMIN_TOKEN, f"admin token {DEV_ADMIN_TOKEN} in use"),
    (HMAC_SECRET, f"secret={HMAC_SECRET}"),
    (HMAC_SECRET, f"could not sign with {HMAC_SECRET}"),
    (ED25519_SECRET, f"key {ED25519_SECRET}"),
    (HMAC_SIGNATURE, f"webhook-signature: {HMAC_SIGNATURE} {HMAC_SIGNATURE}"),
    (ED25519_SIGNATURE, f"signed {ED25519_SIGNATURE}"),
    ("opaque-credential-1", "Authorization: Bearer opaque-credential-1"),
    ("opaque-credential-1", "authorization: bearer opaque-credential-1"),
    ("dXNlcjpwYXNzd29yZA==", "Basic dXNlcjpwYXNzd29yZA=="),
    ("opaque-credential-1", "b'Authorization: opaque-credential-1\\rX'"),
    ("opaque-credential-1", "Cookie: session=opaque-credential-1"),
    ("opaque-credential-1", "GET /x?a=1&access_token=opaque-credential-1&b=2"),
    ("opaque-credential-1", "GET /x?api_key=opaque-credential-1"),
    ("s3cr3t-pa55", "cannot connect to postgresql://hookrelay:s3cr3t-pa55@db:5432/hookrelay"),
    ("s3cr3t-pa55", "redis://:s3cr3t-pa55@127.0.0.1:6379/0 refused"),
]


# Named without the credential, which is new on every run: test names must not change.
SHAPED_IDS = [line.replace(credential, "<credential>") for credential, line in SHAPED]


@pytest.mark.parametrize(("credential", "line"), SHAPED, ids=SHAPED_IDS)
def test_credential_is_replaced_by_shape(credential: str, line: str) -> None:
    redacted = Redactor().text(line)
    assert credential not in redacted
    assert REDACTED in redacted


@pytest.mark.parametrize(
    "line",
    [
        "delivery attempted",
        "app created app_01a22cf087501a8465b02e7896843997 key_01a22cf087501a8465b02e7896843997",
        "public key whpk_ZHVtbXkgcHVibGljIGtleQ==",  # a public key is no secret
        "the stream token expired; send the endpoint's whsec_ secret",
        "GET /v1/apps/app_1/events?after=evt_1&limit=50 HTTP/1.1",
        "v1 of the API, v1,2 and v1a",
        "https://example.com:8443/hook",
    ],
)
def test_line_without_a_credential_is_unchanged(line: str) -> None:
    assert Redactor([ADMIN_TOKEN]).text(line) == line


def test_kept_prefix_says_what_was_redacted() -> None:
    assert Redactor().text(f"Authorization: Bearer {APP_KEY}") == f"Authorization: {REDACTED}"
    assert Redactor().text("GET /s?token=abc&n=1") == f"GET /s?token={REDACTED}&n=1"
    assert Redactor().text("redis://u:pw1234@h/0") == f"redis://u:{REDACTED}@h/0"


def test_configured_secret_without_a_shape_is_replaced() -> None:
    line = f"Invalid header token:\n\n  b'{ADMIN_TOKEN}'\n   ^"
    assert ADMIN_TOKEN not in Redactor([ADMIN_TOKEN]).text(line)
    assert ADMIN_TOKEN in Redactor().text(line)


def test_short_configured_secret_is_not_searched() -> None:
    # Blanking every "abc" would make the logs useless; such a secret protects little anyway.
    assert Redactor(["abc"]).text("abc def") == "abc def"


def test_secret_values_hold_every_configured_secret_in_each_spelling() -> None:
    key = bytes(range(32))
    old = bytes(range(1, 33))
    settings = Settings(
        database_url="postgresql://hookrelay:db-password@db/hookrelay",
        redis_url="redis://:redis-password@cache:6379/0",
        admin_token=ADMIN_TOKEN,
        secret_key=key,
        old_secret_keys=(old,),
        metrics_token="metrics-token-value",
    )
    values = settings.secret_values()
    for spelling in (
        ADMIN_TOKEN,
        "metrics-token-value",
        "db-password",
        "redis-password",
        base64.b64encode(key).decode(),
        base64.urlsafe_b64encode(key).decode().rstrip("="),
        base64.b64encode(old).decode(),
    ):
        assert spelling in values
    assert Settings().secret_values() == ()
    unparsable = "postgresql://u:pw@[::1/db"
    assert unparsable in Settings(database_url=unparsable).secret_values()


def _event(**fields: Any) -> dict[str, Any]:
    return dict(Redactor([ADMIN_TOKEN])(None, "info", fields))


def test_every_field_of_an_event_is_searched() -> None:
    event = _event(
        event=f"refused {APP_KEY}",
        path=f"/s?token={STREAM_TOKEN}",
        exception=f'Traceback (most recent call last):\n  File "x.py"\nValueError: {ADMIN_TOKEN}',
        headers={"Authorization": f"Bearer {APP_KEY}", "X-Note": HMAC_SECRET},
        tried=[f"Bearer {ADMIN_TOKEN}", (HMAC_SIGNATURE,)],
        attempt=2,
        ok=True,
        latency_ms=1.5,
        missing=None,
    )
    assert not any(
        secret in json.dumps(event)
        for secret in (APP_KEY, STREAM_TOKEN, ADMIN_TOKEN, HMAC_SECRET, HMAC_SIGNATURE)
    )
    assert event["attempt"] == 2 and event["ok"] is True and event["missing"] is None


def test_field_named_like_a_credential_is_replaced_whatever_its_value() -> None:
    event = _event(token="anything", Authorization="x", password=1234, key_id="key_1")
    assert event == {
        "token": REDACTED,
        "Authorization": REDACTED,
        "password": REDACTED,
        "key_id": "key_1",
    }


def test_object_is_rendered_to_text_before_it_is_searched() -> None:
    error = ConnectionError(f"cannot reach redis://:{ADMIN_TOKEN}@cache/0")
    assert ADMIN_TOKEN not in _event(error=error)["error"]


def test_structlog_own_fields_are_left_alone() -> None:
    record = logging.LogRecord("x", logging.INFO, "x.py", 1, APP_KEY, None, None)
    assert _event(_record=record)["_record"] is record


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    """configure_logging writing to a buffer; the process's logging restored afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, structlog.get_config(), sys.excepthook)
    saved_thread_hook = threading.excepthook
    stream = io.StringIO()
    configure_logging("json", "debug", [ADMIN_TOKEN], stream=stream)
    yield stream
    root.handlers[:], level, config, sys.excepthook = saved
    root.setLevel(level)
    threading.excepthook = saved_thread_hook
    structlog.configure(**config)
    logging.captureWarnings(False)
    for name in ("arq", "aiohttp.access"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_stdlib_message_and_args_are_redacted(logged: io.StringIO) -> None:
    logging.getLogger("aiohttp.server").error("Error handling %s from %s", APP_KEY, ADMIN_TOKEN)
    [line] = _lines(logged)
    assert line["event"] == f"Error handling {REDACTED} from {REDACTED}"
    assert line["logger"] == "aiohttp.server"


def test_stdlib_traceback_is_redacted(logged: io.StringIO) -> None:
    try:
        raise ValueError(f"Invalid header value char:\n\n  b'Authorization: Bearer {APP_KEY}\\x01'")
    except ValueError:
        logging.getLogger("aiohttp.server").exception("Error handling request")
    [line] = _lines(logged)
    assert "Traceback" in line["exception"]
    assert APP_KEY not in logged.getvalue()


def test_structlog_fields_and_traceback_are_redacted(logged: io.StringIO) -> None:
    log = structlog.get_logger("hookrelay.test")
    try:
        raise RuntimeError(f"stream {STREAM_TOKEN}")
    except RuntimeError:
        log.exception("failed", secret_header=HMAC_SECRET, note=f"admin {ADMIN_TOKEN}")
    [line] = _lines(logged)
    assert line["event"] == "failed" and "RuntimeError" in line["exception"]
    for secret in (STREAM_TOKEN, HMAC_SECRET, ADMIN_TOKEN):
        assert secret not in logged.getvalue()


def test_warnings_and_uncaught_exceptions_go_through_the_redactor(logged: io.StringIO) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # not an error, as pytest makes it
        warnings.warn_explicit(f"used {APP_KEY}", UserWarning, "x.py", 1)
    try:
        raise KeyError(ADMIN_TOKEN)
    except KeyError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    thread = threading.Thread(target=_raise, args=(STREAM_TOKEN,))
    thread.start()
    thread.join()
    lines = _lines(logged)
    assert [line["logger"] for line in lines] == ["py.warnings", "hookrelay", "hookrelay"]
    for secret in (APP_KEY, ADMIN_TOKEN, STREAM_TOKEN):
        assert secret not in logged.getvalue()


def _raise(text: str) -> None:
    raise RuntimeError(text)


def test_console_format_is_redacted_too() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, structlog.get_config(), sys.excepthook)
    saved_thread_hook = threading.excepthook
    try:
        configure_logging("console", "info", stream=stream)
        logging.getLogger("asyncio").error("Task exception: %s", f"Bearer {APP_KEY}")
    finally:
        root.handlers[:], level, config, sys.excepthook = saved
        root.setLevel(level)
        threading.excepthook = saved_thread_hook
        structlog.configure(**config)
        logging.captureWarnings(False)
    assert "Task exception" in stream.getvalue()
    assert APP_KEY not in stream.getvalue()
