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
# ... in each spelling a field or header name takes (a set lookup is cheaper than .lower()).
_SECRET_FIELD_SPELLINGS = SECRET_FIELDS | {
    f(name) for name in SECRET_FIELDS for f in (str.title, str.upper)
}
# What a credential looks like, each shape with the words that betray it (lower case): a line
# is searched for the words first, in one pass, and only a line holding one for the shapes.
# Groups named keep_* hold the text kept before the marker.
_SHAPES: tuple[tuple[tuple[str, ...], str], ...] = (
    # hookrelay's own: app keys, stream tokens, dev admin tokens, endpoint secrets (HMAC and
    # Ed25519). No \b in front: a refused request line may glue one to the method (`Ghrk_...`).
    (
        ("hrk_", "hrst_", "hra_", "whsec_", "whsk_"),
        r"(?:hrk|hrst|hra|whsec|whsk)_[A-Za-z0-9_.+/=-]+",
    ),
    # Standard Webhooks signatures: v1,<base64 HMAC> and v1a,<base64 Ed25519>.
    (("v1,", "v1a,"), r"(?<![A-Za-z0-9])v1a?,[A-Za-z0-9+/]{16,}={0,2}"),
    # Authorization schemes, quoted headers (`Authorization: x`) and query parameters
    # (`?token=x`), whatever the credential inside.
    (("bearer", "basic"), r"(?P<keep_scheme>(?i:bearer|basic)\s+)[^\s'\"\\,;]+"),
    (
        ("authorization", "cookie", "x-api-key"),
        r"(?P<keep_header>(?i:authorization|cookie|x-api-key)\s*:\s*)[^\r\n'\"\\]+",
    ),
    (
        ("token=", "secret=", "password=", "passwd=", "api_key=", "apikey=", "signature="),
        r"(?P<keep_param>(?i:token|secret|password|passwd|api_key|apikey|signature)=)"
        r"[^&\s'\"\\#;,]+",
    ),
    # The password of a URL (`postgresql://user:password@host`).
    (("://",), r"(?P<keep_userinfo>://[^/\s:@'\"]*:)[^@\s/'\"]+(?=@)"),
)
_KEPT = ("keep_scheme", "keep_header", "keep_param", "keep_userinfo")


# Fields structlog itself adds, from no input: not searched.
_OWN_FIELDS = frozenset({"timestamp", "level", "logger", "_record", "_from_structlog"})


class Redactor:
    """Replaces credentials in log events: by shape, and the configured secret values."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        literals = sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)
        words = {word for words, _ in _SHAPES for word in words} | {s.lower() for s in literals}
        # Literal words in a trie, case-sensitive (on lowered text): the regex engine then skips
        # most positions at C speed. A flat or case-insensitive alternation is several times
        # slower, and this search runs on every line.
        self._words = re.compile(_trie(sorted(words)))
        self._pattern = re.compile(
            "|".join([*map(re.escape, literals), *(shape for _, shape in _SHAPES)])
        )

    def text(self, text: str) -> str:
        """`text` with every credential in it replaced by the marker."""
        if self._words.search(text.lower()) is None:  # nearly every line
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
                key: REDACTED if key in _SECRET_FIELD_SPELLINGS else self.value(item)
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
        texts: list[str] = []
        for key, value in event_dict.items():
            if key in _OWN_FIELDS:
                continue
            if key in _SECRET_FIELD_SPELLINGS:
                event_dict[key] = REDACTED
            elif type(value) is str:
                texts.append(value)
            elif not (value is None or isinstance(value, bool | int | float)):
                event_dict[key] = self.value(value)
        # The text fields are searched at once: one call instead of one per field.
        if texts and self._words.search("\n".join(texts).lower()) is not None:
            for key, value in event_dict.items():
                if type(value) is str and key not in _OWN_FIELDS:
                    event_dict[key] = self.text(value)
        return event_dict


def _trie(words: list[str]) -> str:
    """A regex matching any of `words` (sorted), as a trie: `h(?:ra_|rk_)` for hra_ and hrk_."""
    by_first: dict[str, list[str]] = {}
    for word in words:
        by_first.setdefault(word[0], []).append(word[1:])
    branches = []
    for first, rests in by_first.items():
        if "" in rests:  # a shorter word ends here, and suffices
            branches.append(re.escape(first))
        else:
            branches.append(re.escape(first) + _trie(rests))
    return branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"


def _replace(match: re.Match[str]) -> str:
    kept = next((match[name] for name in _KEPT if match[name] is not None), "")
    return kept + REDACTED


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
