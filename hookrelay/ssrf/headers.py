"""Which custom headers an endpoint may carry on its deliveries. Pure: no I/O."""

from __future__ import annotations

from hookrelay.errors import InvalidPayload

# Names an endpoint's own headers may not use, in any spelling: the host, headers that describe
# or frame the body hookrelay signs (every Content-*, Transfer-Encoding, Expect), hop-by-hop and
# proxy headers, and Cookie (the delivery client keeps no cookies; a receiver's session must not
# ride along with a signed event).
RESERVED_HEADERS = frozenset(
    {
        "host",
        "transfer-encoding",
        "expect",
        "cookie",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-authenticate",
        "proxy-connection",
        "accept-encoding",
    }
)
# Whole families: webhook-* carries hookrelay's id, timestamp and signature.
RESERVED_PREFIXES = ("content-", "webhook-")


def is_reserved(name: str) -> bool:
    """True if an endpoint's own headers may not set `name`."""
    lowered = name.lower()
    return lowered in RESERVED_HEADERS or lowered.startswith(RESERVED_PREFIXES)


def check_custom_headers(headers: dict[str, str] | None) -> None:
    """Refuse custom endpoint headers that hookrelay sets itself or that change the request."""
    for name in headers or {}:
        if is_reserved(name):
            raise InvalidPayload(
                f"the header {name} cannot be set on an endpoint",
                [{"path": f"$.headers.{name}", "message": "is a reserved header"}],
            )
