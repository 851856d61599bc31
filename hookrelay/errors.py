"""The errors the domain raises. They say what went wrong, not how to answer it: the API maps
each to an HTTP status and an error code, once (`hookrelay.api.errors`)."""

from __future__ import annotations

from typing import Any


class HookrelayError(Exception):
    """Base of every error hookrelay reports to a client."""

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequest(HookrelayError):
    """A request names something in a form hookrelay cannot take (a filter, a cursor...)."""


class Unauthorized(HookrelayError):
    """No credential, or one that is not valid."""


class Forbidden(HookrelayError):
    """A valid credential that may not do this."""


class NotFound(HookrelayError):
    """No such resource, or one of another app."""


class Conflict(HookrelayError):
    """The request contradicts what is stored (a uid taken, a disabled endpoint...)."""


class InvalidPayload(HookrelayError):
    """A body that breaks its schema or a rule; `details` lists the failing paths."""


class UnsafeTarget(InvalidPayload):
    """A callback URL the SSRF rules refuse."""


class Throttled(HookrelayError):
    """Over a limit; the client may try again after `retry_after_s`."""

    def __init__(self, message: str, details: Any = None, retry_after_s: int = 5) -> None:
        super().__init__(message, details)
        self.retry_after_s = retry_after_s


class DependencyUnavailable(HookrelayError):
    """Postgres or Redis does not answer, or this process is shutting down."""


class Contention(DependencyUnavailable):
    """A concurrent transaction got in the way (Postgres broke a deadlock by ending this one):
    the same work, tried again, may succeed."""
