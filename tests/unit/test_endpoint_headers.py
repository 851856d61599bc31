"""Custom endpoint headers: what the README promises cannot be set, in any spelling."""

from __future__ import annotations

import pytest

from hookrelay.api.errors import answer_of
from hookrelay.errors import InvalidPayload
from hookrelay.ssrf.headers import check_custom_headers

REFUSED = [
    "Host",
    "Content-Type",
    "Content-Length",
    "Content-Encoding",
    "Content-Language",
    "Content-Disposition",
    "Content-MD5",
    "Content-Range",
    "Content-Location",
    "Content-Security-Policy",
    "content-x-anything",
    "CONTENT-TYPE",
    "Expect",
    "EXPECT",
    "Cookie",
    "cookie",
    "Webhook-Id",
    "webhook-signature",
    "Webhook-Timestamp",
    "Transfer-Encoding",
    "Connection",
    "Keep-Alive",
    "Upgrade",
    "TE",
    "Trailer",
    "Proxy-Authorization",
    "Proxy-Connection",
    "Accept-Encoding",
]


@pytest.mark.parametrize("name", REFUSED)
def test_a_reserved_header_is_refused_with_its_path(name: str) -> None:
    with pytest.raises(InvalidPayload) as refused:
        check_custom_headers({"X-Tenant": "acme", name: "x"})
    assert answer_of(refused.value)[0] == 422
    assert refused.value.details == [
        {"path": f"$.headers.{name}", "message": "is a reserved header"}
    ]


@pytest.mark.parametrize(
    "name",
    ["X-Tenant", "Authorization", "X-Content-Type", "Contents", "Cookies-Policy", "Expected-By"],
)
def test_other_headers_are_accepted(name: str) -> None:
    check_custom_headers({name: "x"})


def test_no_headers_are_accepted() -> None:
    check_custom_headers(None)
    check_custom_headers({})
