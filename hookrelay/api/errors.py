"""How the API answers an error: the JSON error shape, and the HTTP status and error code of
each error, declared once here (the domain's errors carry neither)."""

from __future__ import annotations

from typing import Any

from hookrelay.errors import (
    BadRequest,
    Conflict,
    Contention,
    DependencyUnavailable,
    Forbidden,
    HookrelayError,
    InvalidPayload,
    NotFound,
    Throttled,
    Unauthorized,
    UnsafeTarget,
)


class RequestTimeout(HookrelayError):
    """The request's body did not arrive within the read timeout."""


class PayloadTooLarge(HookrelayError):
    """The request's body is larger than the API takes."""


class UnsupportedMediaType(HookrelayError):
    """The request's body is not JSON."""


# The status and code each error is answered with; an error not listed is answered as its
# nearest listed base class (every one is a HookrelayError). A subclass comes after its base.
ANSWERS: dict[type[HookrelayError], tuple[int, str]] = {
    HookrelayError: (500, "internal_error"),
    BadRequest: (400, "bad_request"),
    Unauthorized: (401, "unauthorized"),
    Forbidden: (403, "forbidden"),
    NotFound: (404, "not_found"),
    RequestTimeout: (408, "request_timeout"),
    Conflict: (409, "conflict"),
    PayloadTooLarge: (413, "payload_too_large"),
    UnsupportedMediaType: (415, "unsupported_media_type"),
    InvalidPayload: (422, "invalid_payload"),
    UnsafeTarget: (422, "unsafe_url"),
    Throttled: (429, "throttled"),
    DependencyUnavailable: (503, "unavailable"),
    Contention: (503, "contention"),  # a deadlock lost: the same request may be sent again
}
# Refusals aiohttp makes itself that no error above stands for.
OTHER_CODES = {405: "method_not_allowed"}


def answer_of(error: HookrelayError) -> tuple[int, str]:
    """The HTTP status and error code `error` is answered with."""
    for kind in type(error).__mro__:
        answer = ANSWERS.get(kind)
        if answer is not None:
            return answer
    raise AssertionError(f"{type(error).__name__} is no HookrelayError")


def http_code(status: int) -> str:
    """The error code of a refusal that carries only a status (aiohttp's own: an unknown route,
    a wrong method, a malformed request): the code of the first error answered with it."""
    for kind, (answered, code) in ANSWERS.items():
        if answered == status and kind is not HookrelayError:
            return code
    return OTHER_CODES.get(status, "http_error")


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The JSON error shape every answer that refuses something has."""
    return {"error": {"code": code, "message": message, "details": details}}
