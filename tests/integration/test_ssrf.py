"""SSRF: unsafe callback URLs are refused at registration, and a name that resolves to a
private address at delivery time (DNS rebinding) is blocked at connect time and recorded."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import replace
from typing import Any

import aiohttp.connector
import orjson
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestClient

from hookrelay.settings import Settings
from tests.integration.api_calls import (
    add_endpoint,
    bearer,
    create_app_with_key,
    post_json,
    save_endpoint_as_before,
    send_event,
    wait_for_delivery_status,
)
from tests.receiver import Received, Receiver

Client = TestClient  # type: ignore[type-arg]


class ScriptedResolver(AbstractResolver):
    """Answers each host with the next answer of its script (the last one repeats); an answer
    is one or more comma-separated addresses. An IP literal resolves to itself."""

    def __init__(self, script: dict[str, list[str]]) -> None:
        self.script = script
        self.calls: dict[str, int] = {}

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            answers = [str(ipaddress.ip_address(host))]
        except ValueError:
            answers = self.script.get(host, [])
        if not answers:
            raise OSError(f"{host} is not in this test's DNS")
        n = self.calls.get(host, 0)
        self.calls[host] = n + 1
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for address in answers[min(n, len(answers) - 1)].split(",")
        ]

    async def close(self) -> None:
        pass


SCRIPT = {
    "public.example": ["93.184.216.34"],
    "internal.example": ["10.0.0.5"],
    "metadata.example": ["169.254.169.254"],
    "mixed.example": ["93.184.216.34,127.0.0.1"],
    "six.example": ["::1"],
    "rebind.example": ["93.184.216.34", "127.0.0.1"],
    # What Python's IDNA 2003 makes of faß.example; the HTTP client asks for xn--fa-hia.example.
    "fass.example": ["93.184.216.34"],
}


@pytest.fixture
def resolver() -> ScriptedResolver:
    return ScriptedResolver({k: list(v) for k, v in SCRIPT.items()})


UNSAFE_URLS = [
    # Loopback, in every spelling resolvers accept.
    "http://127.0.0.1/hook",
    "http://127.0.0.1:8080/hook",
    "http://127.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0x7f.0x0.0x0.0x1/",
    "http://0177.0.0.1/",
    "http://017700000001/",
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    # Unspecified, private, link-local (cloud metadata), CGNAT.
    "http://0.0.0.0/",
    "http://[::]/",
    "http://10.0.0.1/",
    "http://10.255.255.255/",
    "http://172.16.0.1/",
    "http://172.31.255.254/",
    "http://192.168.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.0.1/",
    "http://100.64.0.1/",
    "http://100.127.255.254/",
    # IPv6 unique-local, link-local, site-local, multicast; IPv4 multicast, reserved.
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://[fe80::1]/",
    "http://[fec0::1]/",
    "http://[ff02::1]/",
    "http://224.0.0.1/",
    "http://239.255.255.250/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://198.18.0.1/",
    "http://192.0.2.1/",
    "http://[2001:db8::1]/",
    # IPv6 wrappers of private IPv4: mapped, compatible, NAT64, 6to4, Teredo.
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::127.0.0.1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[64:ff9b:1::a00:1]/",
    "http://[2002:7f00:1::1]/",
    "http://[2002:a9fe:a9fe::1]/",
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
    # Names that resolve to unsafe addresses (one bad answer among good ones is enough).
    "http://localhost/",
    "http://internal.example/hook",
    "http://metadata.example/",
    "http://mixed.example/",
    "http://six.example/",
    "http://unknown.example/",
    # Not http(s), credentials, no host, bad ports, control characters, too long.
    "ftp://public.example/",
    "file:///etc/passwd",
    "gopher://public.example/",
    "javascript:alert(1)",
    "http://user:pass@public.example/",
    "http://user@public.example/",
    "http:///nohost",
    "http://public.example:0/",
    "http://public.example:99999/",
    "http://public.example/a b",
    "http://public.example/\r\nHost: evil",
    "http://public.example/\x00",
    "http://public.example/" + "a" * 2100,
    # Hosts the HTTP client would not parse, or would read as another host.
    "http://93.184.216.34\u200b:9/hook",
    "http://public\u00ad.example/",
    "http://faß.example/",
    "http://[::ffff:127.1]/",
    "http://[::ffff:0177.0.0.1]:9/",
]


@pytest.mark.settings(allowed_cidrs=())
@pytest.mark.parametrize("url", UNSAFE_URLS)
async def test_unsafe_callback_url_is_refused_at_registration(api: Client, url: str) -> None:
    app = await create_app_with_key(api)
    headers = bearer(app["api_key"])
    response = await api.post(f"/v1/apps/{app['id']}/endpoints", json={"url": url}, headers=headers)
    assert response.status == 422, url
    body = await response.json()
    assert body["error"]["code"] in ("unsafe_url", "invalid_payload"), body
    assert body["error"]["message"]
    listed = await (await api.get(f"/v1/apps/{app['id']}/endpoints", headers=headers)).json()
    assert listed["data"] == []


def test_the_table_has_at_least_forty_unsafe_urls() -> None:
    assert len(UNSAFE_URLS) >= 40


@pytest.mark.settings(allowed_cidrs=())
async def test_a_public_callback_url_is_accepted(api: Client) -> None:
    app = await create_app_with_key(api)
    response = await api.post(
        f"/v1/apps/{app['id']}/endpoints",
        json={"url": "https://public.example/hook"},
        headers=bearer(app["api_key"]),
    )
    assert response.status == 201


@pytest.mark.settings(allowed_cidrs=())
@pytest.mark.usefixtures("worker")
async def test_dns_rebinding_to_loopback_is_blocked_at_connect_time(
    api: Client, receiver: Receiver, resolver: ScriptedResolver
) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    app = await create_app_with_key(api)
    response = await api.post(
        f"/v1/apps/{app['id']}/endpoints",
        json={"url": f"http://rebind.example:{port}/hook"},
        headers=bearer(app["api_key"]),
    )
    assert response.status == 201, await response.text()
    assert resolver.calls["rebind.example"] == 1  # registration saw the public address
    event = await send_event(api, app, "image.ready", {"n": 1})

    attempt = await _first_attempt(api, app, event["id"])
    assert attempt["error_kind"] == "unsafe_target"
    # What the resolver answered stays inside the gateway.
    assert attempt["error_message"] == "the host rebind.example resolves to a non-public address"
    assert receiver.requests == []


@pytest.mark.settings(allowed_cidrs=())
@pytest.mark.parametrize(
    "host", ["internal.example", "metadata.example", "mixed.example", "six.example"]
)
async def test_a_refused_name_does_not_tell_what_it_resolves_to(api: Client, host: str) -> None:
    app = await create_app_with_key(api)
    status, answer = await post_json(api, app, "/endpoints", {"url": f"https://{host}/hook"})
    assert status == 422
    body = orjson.dumps(answer).decode()
    message = f"the host {host} resolves to a non-public address"
    assert answer["error"] == {
        "code": "unsafe_url",
        "message": message,
        "details": None,
    }
    for address in SCRIPT[host][0].split(","):
        assert address not in body


@pytest.mark.parametrize(
    "host", ["127.1", "2130706433", "0x7f000001", "0177.0.0.1", "0", "\uff11\uff12\uff17.\uff11"]
)
async def test_a_numeric_spelling_is_refused_at_registration_even_where_loopback_is_allowed(
    api: Client, host: str
) -> None:
    app = await create_app_with_key(api)
    status, answer = await post_json(api, app, "/endpoints", {"url": f"http://{host}:8080/hook"})
    assert status == 422
    error = answer["error"]
    assert error["code"] == "unsafe_url"
    assert "four decimal numbers" in error["message"]


# Spellings aiohttp takes for IP literals (digits and dots only), so that it connects to them
# without asking the resolver: before aiohttp 3.14 nothing stopped them there.
NUMERIC_SPELLINGS = ["127.1", "2130706433", "0177.0.0.1", "127.0.1", "0"]


@pytest.mark.settings(allowed_cidrs=())
@pytest.mark.usefixtures("worker")
@pytest.mark.parametrize("host", NUMERIC_SPELLINGS)
async def test_a_numeric_spelling_stored_earlier_is_blocked_at_connect_time_by_hookrelay(
    api: Client,
    receiver: Receiver,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    host: str,
) -> None:
    """An endpoint saved before registration refused these spellings: the worker refuses it
    itself. aiohttp's own refusal (3.14) is switched off here, as in aiohttp 3.13, where the
    connection went through to the receiver on loopback."""
    monkeypatch.setattr(aiohttp.connector, "is_canonical_ipv4_address", lambda host: True)
    port = receiver.url.rsplit(":", 1)[1]
    app = await create_app_with_key(api)
    endpoint = await add_endpoint(api, app, f"http://public.example:{port}/hook")
    await save_endpoint_as_before(
        settings, app, endpoint["id"], lambda e: replace(e, url=f"http://{host}:{port}/hook")
    )
    event = await send_event(api, app, "image.ready", {"n": 1})

    attempt = await _first_attempt(api, app, event["id"])
    assert receiver.requests == []
    assert attempt["error_kind"] == "unsafe_target"
    assert "four decimal numbers" in attempt["error_message"]


@pytest.mark.usefixtures("worker")
async def test_a_stored_url_the_http_client_cannot_parse_uses_up_its_attempts(
    api: Client, receiver: Receiver, settings: Settings
) -> None:
    """Saved before registration asked the HTTP client's parser: each try is a failed attempt,
    so the delivery dead-letters instead of going round unsent for ever."""
    port = receiver.url.rsplit(":", 1)[1]
    app = await create_app_with_key(api)
    endpoint = await add_endpoint(api, app, f"http://127.0.0.1:{port}/hook")
    await save_endpoint_as_before(
        settings,
        app,
        endpoint["id"],
        lambda e: replace(e, url=f"http://127.0.0.1\u200b:{port}/hook"),
    )
    event = await send_event(api, app, "image.ready", {"n": 1})

    detail = await wait_for_delivery_status(api, app, event["id"], "dead")
    (delivery,) = detail["deliveries"]
    assert delivery["attempt_count"] == len(settings.retry_schedule_s) + 1
    attempt = await _first_attempt(api, app, event["id"])
    assert attempt["error_kind"] == "request_error"
    assert receiver.requests == []


@pytest.mark.usefixtures("worker")
async def test_redirects_are_not_followed(api: Client, receiver: Receiver) -> None:
    async def redirect(received: Received) -> web.Response:
        if received.path == "/hook":
            raise web.HTTPFound(location=f"{receiver.url}/elsewhere")
        return web.Response(text="ok")

    receiver.respond = redirect
    app = await create_app_with_key(api)
    response = await api.post(
        f"/v1/apps/{app['id']}/endpoints",
        json={"url": f"{receiver.url}/hook"},
        headers=bearer(app["api_key"]),
    )
    assert response.status == 201
    event = await send_event(api, app, "image.ready", {"n": 1})
    attempt = await _first_attempt(api, app, event["id"])
    assert (attempt["status_code"], attempt["error_kind"]) == (302, "http_status")
    assert receiver.at("/elsewhere") == []


async def _first_attempt(api: Client, app: dict[str, Any], event_id: str) -> dict[str, Any]:
    import asyncio

    for _ in range(200):
        response = await api.get(f"/v1/apps/{app['id']}/attempts", headers=bearer(app["api_key"]))
        attempts = orjson.loads(await response.read())["data"]
        if attempts:
            first: dict[str, Any] = attempts[-1]
            return first
        await asyncio.sleep(0.05)
    raise AssertionError(f"no attempt was recorded for {event_id}")
