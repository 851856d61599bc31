"""Structured logs (structlog): JSON in production, readable in a terminal.

Callers bind ids (`event_id`, `delivery_id`, `endpoint_id`, `attempt`), never a secret, token,
signature or payload.
"""

from __future__ import annotations

import logging
import sys

import orjson
import structlog


def configure_logging(log_format: str = "json", level: str = "info") -> None:
    """Route structlog and the standard library's loggers to stderr in one format."""
    numeric_level = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
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
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processor=renderer)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    # arq logs every job at INFO; one line per delivery is ours to write.
    logging.getLogger("arq").setLevel(max(numeric_level, logging.WARNING))
    logging.getLogger("aiohttp.access").setLevel(max(numeric_level, logging.WARNING))


def _dumps(obj: object, **_: object) -> str:
    return orjson.dumps(obj, default=str).decode()
