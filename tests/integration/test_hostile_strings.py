"""Property tests against the real app on real Postgres: for every request schema, any string
in any of its string fields (empty, very long, any Unicode, NUL, control characters, lone
surrogates escaped in the JSON text) gets a 2xx or a 4xx, never a 5xx.

Bounded: EXAMPLES per schema, so that each takes a few seconds."""

from __future__ import annotations

import ipaddress
import json
import random
import socket
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookrelay.resources import resource_dir
from tests.integration.api_calls import ADMIN, add_endpoint, create_app_with_key

Client = TestClient  # type: ignore[type-arg]
STORE_REFUSED = "cannot be stored or searched for"
EXAMPLES = 40
Body = dict[str, Any]


class NoDnsResolver(AbstractResolver):
    """An IP literal resolves to itself and a name to nothing: a generated URL never leads to
    a DNS query."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise OSError(f"{host} is not resolved in this test") from None
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        return [
            ResolveResult(
                hostname=host, host=str(address), port=port, family=family, proto=0, flags=0
            )
        ]

    async def close(self) -> None:
        pass


@pytest.fixture
def resolver() -> AbstractResolver:
    return NoDnsResolver()


def _noise(seed: int, length: int) -> str:
    """Random job-id characters: a value that passes every pattern but a length, and that
    Postgres cannot compress below what an index entry holds."""
    return "".join(random.Random(seed).choices(JOB_ID_CHARACTERS, k=length))


JOB_ID_CHARACTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-"
# Characters of every kind, with the ones that break things most often drawn more often.
awkward = st.sampled_from(["\x00", "\n", "\r", "\t", "\u2028", "\ufeff", "\U0001f600", "é", "$"])
characters = st.characters() | st.characters(categories=["Cs"]) | awkward
hostile = st.one_of(
    st.text(characters, max_size=50),
    st.text(characters, min_size=190, max_size=300),
    st.builds(_noise, st.integers(0, 2**32), st.integers(min_value=100, max_value=20_000)),
    # Long runs, past every maxLength and past what a btree index entry holds (~2,700 bytes).
    st.builds(lambda c, n: c * n, characters, st.integers(min_value=1, max_value=60_000)),
    st.builds(
        lambda s, n: s * n, st.text(characters, min_size=2, max_size=8), st.integers(1, 8000)
    ),
)

# What a client can put in a header value at all (aiohttp refuses to send the rest).
HEADER_CHARACTERS = st.characters(min_codepoint=0x9, max_codepoint=0xFF).filter(
    lambda c: c == "\t" or not (c < " " or c == "\x7f")
)


def _set(body: Body, path: tuple[str | int, ...], value: Any) -> Body:
    """A copy of `body` with the string at `path` (keys and indexes) replaced by `value`;
    a path ending in "*key" replaces that dictionary key instead."""
    copy: Any = json.loads(json.dumps(body))
    target = copy
    for part in path[:-1]:
        target = target[part]
    last = path[-1]
    if isinstance(last, str) and last.startswith("*"):
        target[value] = target.pop(last[1:])
    else:
        target[last] = value
    return copy


async def _send(api: Client, method: str, url: str, body: Body, **headers: str) -> int:
    # json.dumps escapes every non-ASCII character, lone surrogates too: the JSON text is valid
    # whatever the string holds.
    data = json.dumps(body, ensure_ascii=True).encode()
    response = await api.request(
        method, url, data=data, headers={**ADMIN, "Content-Type": "application/json", **headers}
    )
    text = await response.text()
    assert response.status < 500, f"{method} {url} -> {response.status}: {text[:300]}"
    # Storage's last resort for a value Postgres refused: no input may get that far.
    assert STORE_REFUSED not in text, f"{method} {url}: Postgres saw a value it cannot take"
    return response.status


# An endpoint's body and its string fields, for creating and for changing it alike.
ENDPOINT_BODY = {
    "url": "http://127.0.0.1:9/hook",
    "description": "d",
    "event_types": ["image.ready"],
    "headers": {"X-Team": "a"},
}
ENDPOINT_FIELDS = [
    ("url",),
    ("description",),
    ("event_types", 0),
    ("headers", "X-Team"),
    ("headers", "*X-Team"),
]


# For each request schema: the route it is sent to (given an app and an endpoint), a valid
# body, and the paths of its string fields.
Target = tuple[str, Callable[[str, str], str], Body, list[tuple[str | int, ...]]]
TARGETS: dict[str, Target] = {
    "app_create": ("POST", lambda app, ep: "/v1/apps", {"name": "n"}, [("name",), ("uid",)]),
    "app_update": (
        "PATCH",
        lambda app, ep: f"/v1/apps/{app}",
        {"name": "n"},
        [("name",), ("uid",)],
    ),
    "app_key_create": (
        "POST",
        lambda app, ep: f"/v1/apps/{app}/keys",
        {"name": "k", "scopes": ["read"]},
        [("name",), ("scopes", 0)],
    ),
    "endpoint_create": (
        "POST",
        lambda app, ep: f"/v1/apps/{app}/endpoints",
        ENDPOINT_BODY,
        ENDPOINT_FIELDS,
    ),
    "endpoint_update": (
        "PATCH",
        lambda app, ep: f"/v1/apps/{app}/endpoints/{ep}",
        ENDPOINT_BODY,
        ENDPOINT_FIELDS,
    ),
    "event_create": (
        "POST",
        lambda app, ep: f"/v1/apps/{app}/events",
        {"type": "image.ready", "job_id": "j1", "data": {"job_id": "j1", "note": "x", "k": 1}},
        [("type",), ("job_id",), ("data", "job_id"), ("data", "note"), ("data", "*k")],
    ),
    "event_batch": (
        "POST",
        lambda app, ep: f"/v1/apps/{app}/events/batch",
        {
            "events": [
                {"type": "job.progress", "data": {"job_id": "j1", "percent": 5, "message": "m"}}
            ]
        },
        [("events", 0, "type"), ("events", 0, "data", "job_id"), ("events", 0, "data", "message")],
    ),
    "recover": (
        "POST",
        lambda app, ep: f"/v1/apps/{app}/endpoints/{ep}/recover",
        {"since": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z", "dry_run": True},
        [("since",), ("until",)],
    ),
    "replay": (
        "POST",
        lambda app, ep: f"/v1/apps/{app}/deliveries/replay",
        {
            "endpoint_id": "<endpoint>",
            "event_type": "image.ready",
            "since": "2026-01-01T00:00:00Z",
            "until": "2026-01-02T00:00:00Z",
            "dry_run": True,
        },
        [("endpoint_id",), ("event_type",), ("since",), ("until",)],
    ),
    "example_send": (
        "POST",
        lambda app, ep: f"/v1/apps/{app}/endpoints/{ep}/send-example",
        {"type": "job.completed"},
        [("type",)],
    ),
    "portal_session_create": (
        "POST",
        lambda app, ep: f"/v1/apps/{app}/portal-sessions",
        {"capabilities": ["replay"]},
        [("capabilities", 0)],
    ),
    "stream_token_create": (
        "POST",
        lambda app, ep: f"/v1/apps/{app}/stream-tokens",
        {"job_id": "j1"},
        [("job_id",)],
    ),
}


def test_every_request_schema_has_a_hostile_string_test() -> None:
    schemas = {p.stem for p in (resource_dir("schemas") / "requests").glob("*.json")}
    assert schemas == set(TARGETS)


@pytest.mark.parametrize("schema", sorted(TARGETS))
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_any_string_in_any_field_gets_2xx_or_4xx(
    api: Client, schema: str, data: st.DataObject
) -> None:
    method, route, valid, paths = TARGETS[schema]
    app = await create_app_with_key(api, name="hostile")
    endpoint = await add_endpoint(api, app, "http://127.0.0.1:9/hook")
    url = route(app["id"], endpoint["id"])
    valid = json.loads(json.dumps(valid).replace("<endpoint>", endpoint["id"]))
    assert await _send(api, method, url, valid) < 300  # the template itself is accepted
    path = data.draw(st.sampled_from(paths), label="field")
    value = data.draw(hostile, label="value")
    await _send(api, method, url, _set(valid, path, value))
    if schema.startswith("event"):  # the Idempotency-Key header, with the hostile body
        key = data.draw(st.text(HEADER_CHARACTERS, max_size=300), label="Idempotency-Key")
        await _send(api, method, url, _set(valid, path, value), **{"Idempotency-Key": key})
