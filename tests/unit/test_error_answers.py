"""Each error is answered with one HTTP status and one error code, declared in the API layer;
aiohttp's own refusals get the code of the error answered with the same status."""

from __future__ import annotations

import pytest

from hookrelay import errors
from hookrelay.api.errors import (
    ANSWERS,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
    answer_of,
    error_body,
    http_code,
)

# What clients have always been answered (the API's contract; the README lists the shape).
EXPECTED = [
    (errors.BadRequest, 400, "bad_request"),
    (errors.Unauthorized, 401, "unauthorized"),
    (errors.Forbidden, 403, "forbidden"),
    (errors.NotFound, 404, "not_found"),
    (RequestTimeout, 408, "request_timeout"),
    (errors.Conflict, 409, "conflict"),
    (PayloadTooLarge, 413, "payload_too_large"),
    (UnsupportedMediaType, 415, "unsupported_media_type"),
    (errors.InvalidPayload, 422, "invalid_payload"),
    (errors.UnsafeTarget, 422, "unsafe_url"),
    (errors.Throttled, 429, "throttled"),
    (errors.DependencyUnavailable, 503, "unavailable"),
    (errors.Contention, 503, "contention"),
    (errors.HookrelayError, 500, "internal_error"),
]


@pytest.mark.parametrize(("kind", "status", "code"), EXPECTED)
def test_each_error_is_answered_with_its_status_and_code(
    kind: type[errors.HookrelayError], status: int, code: str
) -> None:
    assert answer_of(kind("refused")) == (status, code)


def test_every_domain_error_has_an_answer() -> None:
    domain = {
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, errors.HookrelayError)
    }
    assert domain <= set(ANSWERS)
    assert {kind for kind, _, _ in EXPECTED} == set(ANSWERS)


def test_domain_errors_carry_no_http_status_or_code() -> None:
    refused = errors.InvalidPayload("refused", [{"path": "$", "message": "no"}])
    assert not hasattr(refused, "status")
    assert not hasattr(refused, "code")


def test_an_error_not_listed_is_answered_as_its_nearest_base() -> None:
    class Unlisted(errors.UnsafeTarget):
        pass

    assert answer_of(Unlisted("refused")) == (422, "unsafe_url")


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "bad_request"),
        (401, "unauthorized"),
        (403, "forbidden"),
        (404, "not_found"),
        (405, "method_not_allowed"),
        (408, "request_timeout"),
        (409, "conflict"),
        (413, "payload_too_large"),
        (415, "unsupported_media_type"),
        (422, "invalid_payload"),
        (429, "throttled"),
        (503, "unavailable"),
        (500, "http_error"),
        (431, "http_error"),
    ],
)
def test_a_bare_status_gets_the_code_of_its_error(status: int, code: str) -> None:
    assert http_code(status) == code


def test_the_error_shape_has_code_message_and_details() -> None:
    assert error_body("not_found", "no such app") == {
        "error": {"code": "not_found", "message": "no such app", "details": None}
    }
