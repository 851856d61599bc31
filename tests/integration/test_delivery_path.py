"""Events in, signed webhooks out: the API, a worker, Postgres, Redis and a receiver, all real."""

from __future__ import annotations

import json
import socket
from dataclasses import replace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hookrelay.settings import Settings
from tests.integration.api_calls import (
    ADMIN,
    add_endpoint,
    bearer,
    create_app_with_key,
    save_endpoint_as_before,
    send_event,
    verify,
    wait_for_delivery_status,
)
from tests.receiver import Received, Receiver

pytestmark = pytest.mark.usefixtures("worker")


async def test_event_reaches_each_subscribed_endpoint_signed(
    api: TestClient,
    receiver: Receiver,  # type: ignore[type-arg]
) -> None:
    app = await create_app_with_key(api)
    every = await add_endpoint(api, app, f"{receiver.url}/all")
    completed = await add_endpoint(
        api, app, f"{receiver.url}/completed", event_types=["job.completed"]
    )
    await add_endpoint(api, app, f"{receiver.url}/failed", event_types=["job.failed"])

    event = await send_event(api, app, "job.completed", {"job_id": "job_1", "output": {"n": 1}})

    await receiver.wait_for(1, "/all")
    await receiver.wait_for(1, "/completed")
    for endpoint, path in ((every, "/all"), (completed, "/completed")):
        [received] = receiver.at(path)
        payload = verify(endpoint["secret"], received)
        assert received.headers["webhook-id"] == event["id"]
        assert payload["type"] == "job.completed"
        assert payload["data"] == {"job_id": "job_1", "output": {"n": 1}}
        assert set(json.loads(received.body)) == {"type", "timestamp", "data"}
    assert receiver.at("/failed") == []


async def test_delivery_is_listed_as_succeeded_with_its_attempt(
    api: TestClient,
    receiver: Receiver,  # type: ignore[type-arg]
) -> None:
    app = await create_app_with_key(api)
    endpoint = await add_endpoint(api, app, f"{receiver.url}/hook")
    event = await send_event(api, app, "image.ready", {"url": "https://cdn.example/1.png"})
    await receiver.wait_for(1)

    detail = await wait_for_delivery_status(api, app, event["id"], "succeeded")
    [delivery] = detail["deliveries"]
    assert delivery["endpoint_id"] == endpoint["id"]
    response = await api.get(
        f"/v1/apps/{app['id']}/deliveries/{delivery['id']}", headers=bearer(app["api_key"])
    )
    body = await response.json()
    assert body["event_id"] == event["id"]
    [attempt] = body["attempts"]
    assert attempt["status_code"] == 200
    assert attempt["error_kind"] is None
    assert attempt["response_body"] == "ok"


async def test_failed_attempt_is_recorded_and_retried(
    api: TestClient,
    receiver: Receiver,  # type: ignore[type-arg]
) -> None:
    answers = iter([500, 200])

    async def flaky(_: Received) -> web.Response:
        return web.Response(status=next(answers), text="busy")

    receiver.respond = flaky
    app = await create_app_with_key(api)
    endpoint = await add_endpoint(api, app, f"{receiver.url}/hook")
    event = await send_event(api, app, "job.started", {"job_id": "job_2"})

    detail = await wait_for_delivery_status(api, app, event["id"], "succeeded")
    [delivery] = detail["deliveries"]
    response = await api.get(
        f"/v1/apps/{app['id']}/deliveries/{delivery['id']}", headers=bearer(app["api_key"])
    )
    attempts = (await response.json())["attempts"]
    assert [(a["attempt_number"], a["status_code"], a["error_kind"]) for a in attempts] == [
        (1, 500, "http_status"),
        (2, 200, None),
    ]
    first, second = receiver.at("/hook")
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == event["id"]
    assert first.body == second.body
    verify(endpoint["secret"], second)


async def test_delivery_is_dead_after_the_last_attempt(
    api: TestClient,
    receiver: Receiver,  # type: ignore[type-arg]
) -> None:
    async def broken(_: Received) -> web.Response:
        return web.Response(status=503, text="down")

    receiver.respond = broken
    app = await create_app_with_key(api)
    await add_endpoint(api, app, f"{receiver.url}/hook")
    event = await send_event(api, app, "job.queued", {"job_id": "job_3"})

    detail = await wait_for_delivery_status(api, app, event["id"], "dead")
    # The test schedule has two retries after the first attempt.
    assert detail["deliveries"][0]["attempt_count"] == 3
    assert len(receiver.at("/hook")) == 3


async def test_stored_headers_the_rules_now_refuse_are_not_sent(
    api: TestClient,  # type: ignore[type-arg]
    receiver: Receiver,
    settings: Settings,
) -> None:
    """Headers saved before Expect, Cookie and every Content-* were refused stay in the row;
    the worker leaves them out (a stored Expect would make the client wait for a 100)."""
    app = await create_app_with_key(api)
    endpoint = await add_endpoint(api, app, f"{receiver.url}/hook", headers={"X-Tenant": "acme"})
    stored = {
        "X-Tenant": "acme",
        "Expect": "100-continue",
        "Cookie": "session=s3cret",
        "Content-Language": "fr",
    }
    await save_endpoint_as_before(
        settings, app, endpoint["id"], lambda e: replace(e, headers=stored)
    )
    event = await send_event(api, app, "job.started", {"job_id": "job_h"})

    await wait_for_delivery_status(api, app, event["id"], "succeeded")
    (received,) = receiver.at("/hook")
    sent = {name.lower() for name in received.headers}
    assert "x-tenant" in sent
    assert not sent & {"expect", "cookie", "content-language"}
    verify(endpoint["secret"], received)


async def test_a_refused_connection_is_recorded_without_the_address(
    api: TestClient,  # type: ignore[type-arg]
) -> None:
    """The attempt says why the connection failed, never to which address: for a name, that
    is the gateway's resolver's answer."""
    with socket.socket() as bound:  # bound, not listening: connections to it are refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        app = await create_app_with_key(api)
        await add_endpoint(api, app, f"http://localhost:{port}/hook")
        event = await send_event(api, app, "job.started", {"job_id": "job_c"})
        detail = await wait_for_delivery_status(api, app, event["id"], "dead")
    [delivery] = detail["deliveries"]
    response = await api.get(
        f"/v1/apps/{app['id']}/deliveries/{delivery['id']}", headers=bearer(app["api_key"])
    )
    for attempt in (await response.json())["attempts"]:
        assert attempt["error_kind"] == "connect"
        assert "Connection refused (ECONNREFUSED)" in attempt["error_message"]
        assert "127.0.0.1" not in attempt["error_message"], attempt
        assert "::1" not in attempt["error_message"], attempt


async def test_paused_endpoint_holds_deliveries_until_resumed(
    api: TestClient,
    receiver: Receiver,  # type: ignore[type-arg]
) -> None:
    app = await create_app_with_key(api)
    endpoint = await add_endpoint(api, app, f"{receiver.url}/hook")
    path = f"/v1/apps/{app['id']}/endpoints/{endpoint['id']}"
    response = await api.patch(path, json={"status": "paused"}, headers=bearer(app["api_key"]))
    assert response.status == 200
    event = await send_event(api, app, "job.queued", {"job_id": "job_4"})
    await wait_for_delivery_status(api, app, event["id"], "held")
    assert receiver.requests == []

    response = await api.patch(path, json={"status": "active"}, headers=bearer(app["api_key"]))
    assert response.status == 200
    await receiver.wait_for(1)
    await wait_for_delivery_status(api, app, event["id"], "succeeded")


async def test_ingest_rejects_invalid_job_payload_and_stores_nothing(
    api: TestClient,
    receiver: Receiver,  # type: ignore[type-arg]
) -> None:
    app = await create_app_with_key(api)
    await add_endpoint(api, app, f"{receiver.url}/hook")
    response = await api.post(
        f"/v1/apps/{app['id']}/events",
        json={"type": "job.progress", "data": {"job_id": "job_5", "percent": 150}},
        headers=bearer(app["api_key"]),
    )
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "invalid_payload"
    assert error["details"][0]["path"] == "$.data.percent"
    listed = await api.get(f"/v1/apps/{app['id']}/events", headers=bearer(app["api_key"]))
    assert (await listed.json())["data"] == []


async def test_app_key_cannot_see_another_app(api: TestClient) -> None:  # type: ignore[type-arg]
    mine = await create_app_with_key(api, "mine")
    theirs = await create_app_with_key(api, "theirs")
    for path in (f"/v1/apps/{theirs['id']}", f"/v1/apps/{theirs['id']}/events"):
        response = await api.get(path, headers=bearer(mine["api_key"]))
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "not_found"
    response = await api.get("/v1/apps", headers=ADMIN)
    assert {a["id"] for a in (await response.json())["data"]} == {mine["id"], theirs["id"]}


async def test_an_example_reaches_its_endpoint_alone_signed_even_if_not_subscribed(
    api: TestClient,
    receiver: Receiver,  # type: ignore[type-arg]
) -> None:
    app = await create_app_with_key(api)
    target = await add_endpoint(api, app, f"{receiver.url}/target", event_types=["image.ready"])
    await add_endpoint(api, app, f"{receiver.url}/other")
    answer = await api.post(
        f"/v1/apps/{app['id']}/endpoints/{target['id']}/send-example",
        json={"type": "job.progress"},
        headers=bearer(app["api_key"]),
    )
    assert answer.status == 202
    sent = await answer.json()
    await receiver.wait_for(1, "/target")
    [received] = receiver.at("/target")
    payload = verify(target["secret"], received)
    assert received.headers["webhook-id"] == sent["id"]
    assert payload["type"] == "job.progress"
    assert payload["data"]["percent"] == 40 and payload["data"]["job_id"] == sent["job_id"]
    await wait_for_delivery_status(api, app, sent["id"], "succeeded")
    assert receiver.at("/other") == []
