"""`hookrelay receive` behind a real hookrelay delivery: what verifies is answered with
--status, what does not is answered 401 and recorded as a failed attempt."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hookrelay.dev.receive import create_receiver
from hookrelay.signing.webhooks import generate_hmac_secret
from tests.integration.api_calls import (
    add_endpoint,
    bearer,
    create_app_with_key,
    send_event,
    wait_for_delivery_status,
)

Client = TestClient  # type: ignore[type-arg]
StartReceiver = Callable[[str | None, int], Coroutine[Any, Any, str]]


@pytest.fixture
async def start_receive() -> AsyncIterator[StartReceiver]:
    """Starts `hookrelay receive`'s app on a free loopback port; returns its URL."""
    runners: list[web.AppRunner] = []

    async def start(secret: str | None, status: int = 200) -> str:
        runner = web.AppRunner(create_receiver(secret, status), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}/hooks"

    yield start
    for runner in runners:
        await runner.cleanup()


async def deliver_through_receive(
    api: Client, start_receive: StartReceiver, secret_of: Callable[[str], str], status: int = 200
) -> dict[str, Any]:
    """Register an endpoint, point it at a receiver started with `secret_of(its secret)`, send
    one event; return the app and the event."""
    app = await create_app_with_key(api)
    endpoint = await add_endpoint(api, app, "http://127.0.0.1:9/not-yet")
    url = await start_receive(secret_of(endpoint["secret"]), status)
    response = await api.patch(
        f"/v1/apps/{app['id']}/endpoints/{endpoint['id']}",
        json={"url": url},
        headers=bearer(app["api_key"]),
    )
    assert response.status == 200, await response.text()
    event = await send_event(api, app, "job.queued", {"job_id": "j1"})
    return {"app": app, "event": event}


async def attempts_of(api: Client, app: dict[str, Any], delivery_id: str) -> list[dict[str, Any]]:
    response = await api.get(
        f"/v1/apps/{app['id']}/deliveries/{delivery_id}", headers=bearer(app["api_key"])
    )
    attempts: list[dict[str, Any]] = (await response.json())["attempts"]
    return attempts


async def test_a_delivery_that_verifies_is_answered_200_and_succeeds(
    api: Client, worker: None, start_receive: StartReceiver
) -> None:
    sent = await deliver_through_receive(api, start_receive, lambda secret: secret)
    done = await wait_for_delivery_status(api, sent["app"], sent["event"]["id"], "succeeded")
    assert done["deliveries"][0]["last_status_code"] == 200


async def test_a_delivery_signed_with_another_secret_is_answered_401_and_fails(
    api: Client, worker: None, start_receive: StartReceiver
) -> None:
    sent = await deliver_through_receive(api, start_receive, lambda _: generate_hmac_secret())
    done = await wait_for_delivery_status(api, sent["app"], sent["event"]["id"], "dead")
    delivery = done["deliveries"][0]
    attempts = await attempts_of(api, sent["app"], delivery["id"])
    assert [a["status_code"] for a in attempts] == [401, 401, 401]
    assert "the signature does not verify" in attempts[0]["response_body"]


async def test_verified_deliveries_are_answered_with_the_status_asked_for(
    api: Client, worker: None, start_receive: StartReceiver
) -> None:
    sent = await deliver_through_receive(api, start_receive, lambda secret: secret, status=503)
    done = await wait_for_delivery_status(api, sent["app"], sent["event"]["id"], "dead")
    assert done["deliveries"][0]["last_status_code"] == 503


async def test_an_unsigned_request_gets_401_with_the_error_shape(
    start_receive: StartReceiver,
) -> None:
    url = await start_receive(generate_hmac_secret(), 200)
    async with aiohttp.ClientSession() as session, session.post(url, json={"a": 1}) as response:
        assert response.status == 401
        body = await response.json()
    assert body["error"]["code"] == "invalid_signature"
    assert body["error"]["message"].startswith("the signature does not verify")


async def test_without_a_secret_every_request_is_answered_with_the_status(
    start_receive: StartReceiver,
) -> None:
    url = await start_receive(None, 202)
    async with aiohttp.ClientSession() as session, session.post(url, json={"a": 1}) as response:
        assert response.status == 202


def test_a_secret_that_is_not_one_is_refused_before_listening() -> None:
    with pytest.raises(ValueError, match="whsec_"):
        create_receiver("not-a-secret", 200)


@pytest.mark.parametrize("placeholder", ["whsec_...", "whsec_", "whsec_bm90!!"])
def test_a_placeholder_secret_is_refused_before_listening(placeholder: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        create_receiver(placeholder, 200)


async def test_a_failure_status_is_answered_with_the_json_error_shape_not_ok(
    start_receive: StartReceiver,
) -> None:
    url = await start_receive(None, 500)
    async with aiohttp.ClientSession() as session, session.post(url, json={"a": 1}) as response:
        assert response.status == 500
        body = await response.json()
    assert body["error"]["code"] == "internal_server_error"


async def test_a_request_without_headers_is_printed_with_no_python_none(
    start_receive: StartReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    url = await start_receive(generate_hmac_secret(), 200)
    async with aiohttp.ClientSession() as session, session.post(url, data=b"{}") as response:
        assert response.status == 401
    printed = capsys.readouterr().out
    assert "POST /hooks webhook-id=(none) NOT VERIFIED" in printed
    assert "None" not in printed
