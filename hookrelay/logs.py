"""Structured logs (structlog): JSON in production, readable in a terminal.

Callers bind ids (`event_id`, `delivery_id`, `endpoint_id`, `attempt`), never a secret, token,
signature or payload. Other code does not know that rule: aiohttp quotes the raw request line or
header it refused, a driver puts its URL in an error. So every line of every logger passes
through one `Redactor` on its way out, whoever wrote it.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterable, MutableMapping
from types import TracebackType
from typing import Any, TextIO

import orjson
import structlog

REDACTED = "[redacted]"
# A configured secret shorter than this is not searched for: it would blank ordinary words.
MIN_SECRET_CHARS = 8
# Field names whose values are credentials whatever they look like.
SECRET_FIELDS = frozenset(
    {"authorization", "cookie", "password", "secret", "token", "api_key", "admin_token"}
)
# What a credential looks like. Groups named keep_* hold the text kept before the marker.
_SHAPES = (
    # hookrelay's own: app keys, stream tokens, dev admin tokens, endpoint secrets (HMAC and
    # Ed25519). No \b in front: a refused request line may glue one to the method (`Ghrk_...`).
    r"(?:hrk|hrst|hra|whsec|whsk)_[A-Za-z0-9_.+/=-]+",
    # Standard Webhooks signatures: v1,<base64 HMAC> and v1a,<base64 Ed25519>.
    r"(?<![A-Za-z0-9])v1a?,[A-Za-z0-9+/]{16,}={0,2}",
    # Authorization schemes, quoted headers (`Authorization: x`) and query parameters
    # (`?token=x`), whatever the credential inside.
    r"(?P<keep_scheme>(?i:bearer|basic)\s+)[^\s'\"\\,;]+",
    r"(?P<keep_header>(?i:authorization|cookie|x-api-key)\s*:\s*)[^\r\n'\"\\]+",
    r"(?P<keep_param>(?i:\w*(?:token|secret|password|passwd|api_key|apikey|signature))=)"
    r"[^&\s'\"\\#;,]+",
    # The password of a URL (`postgresql://user:password@host`).
    r"(?P<keep_userinfo>://[^/\s:@'\"]*:)[^@\s/'\"]+(?=@)",
)
_KEPT = ("keep_scheme", "keep_header", "keep_param", "keep_userinfo")


class Redactor:
    """Replaces credentials in log events: by shape, and the configured secret values."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        literals = sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)
        self._pattern = re.compile("|".join([*map(re.escape, literals), *_SHAPES]))

    def text(self, text: str) -> str:
        """`text` with every credential in it replaced by the marker."""
        # search first: nearly every line holds nothing, and search allocates nothing then.
        if self._pattern.search(text) is None:
            return text
        return self._pattern.sub(_replace, text)

    def value(self, value: Any) -> Any:
        """A field's value with credentials replaced; containers are searched too."""
        if isinstance(value, str):
            return self.text(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, dict):
            return {
                key: REDACTED if _is_secret_field(key) else self.value(item)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(item) for item in value]
        # Anything else is rendered through str(): an exception's text may hold a URL.
        return self.text(str(value))

    def __call__(
        self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """The structlog processor: runs on every line, after exceptions became text."""
        for key, value in event_dict.items():
            if key.startswith("_"):  # structlog's own (`_record`), never rendered
                continue
            event_dict[key] = REDACTED if _is_secret_field(key) else self.value(value)
        return event_dict


def _replace(match: re.Match[str]) -> str:
    kept = next((match[name] for name in _KEPT if match[name] is not None), "")
    return kept + REDACTED


def _is_secret_field(key: object) -> bool:
    return isinstance(key, str) and key.lower() in SECRET_FIELDS


def configure_logging(
    log_format: str = "json",
    level: str = "info",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Route structlog and the standard library's loggers to stderr in one format, with every
    credential (by shape, and the configured `secrets`) replaced in every line."""
    numeric_level = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        Redactor(secrets),  # last: sees the message, every field and the traceback as text
    ]
    renderer: structlog.typing.Processor
    if log_format == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    else:
        renderer = structlog.processors.JSONRenderer(serializer=_dumps)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processor=renderer)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    # arq logs every job at INFO; one line per delivery is ours to write.
    logging.getLogger("arq").setLevel(max(numeric_level, logging.WARNING))
    logging.getLogger("aiohttp.access").setLevel(max(numeric_level, logging.WARNING))
    # Warnings and uncaught exceptions would go to stderr around the handler, unredacted.
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    logging.getLogger("hookrelay").critical("uncaught exception", exc_info=(kind, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None and not isinstance(args.exc_value, SystemExit):
        _log_uncaught(args.exc_type, args.exc_value, args.exc_traceback)


def _dumps(obj: object, **_: object) -> str:
    return orjson.dumps(obj, default=str).decode()
