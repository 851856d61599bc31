"""The errors the domain raises; the API maps each to one HTTP status, once, in a middleware."""

from __future__ import annotations

from typing import Any


class HookrelayError(Exception):
    """Base of every error hookrelay reports to a client."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequest(HookrelayError):
    status = 400
    code = "bad_request"


class Unauthorized(HookrelayError):
    status = 401
    code = "unauthorized"


class Forbidden(HookrelayError):
    status = 403
    code = "forbidden"


class NotFound(HookrelayError):
    status = 404
    code = "not_found"


class Conflict(HookrelayError):
    status = 409
    code = "conflict"


class RequestTimeout(HookrelayError):
    status = 408
    code = "request_timeout"


class PayloadTooLarge(HookrelayError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(HookrelayError):
    status = 415
    code = "unsupported_media_type"


class InvalidPayload(HookrelayError):
    status = 422
    code = "invalid_payload"


class UnsafeTarget(InvalidPayload):
    code = "unsafe_url"


class Throttled(HookrelayError):
    status = 429
    code = "throttled"

    def __init__(self, message: str, details: Any = None, retry_after_s: int = 5) -> None:
        super().__init__(message, details)
        self.retry_after_s = retry_after_s


class DependencyUnavailable(HookrelayError):
    status = 503
    code = "unavailable"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The JSON error shape every answer that refuses something has."""
    return {"error": {"code": code, "message": message, "details": details}}
