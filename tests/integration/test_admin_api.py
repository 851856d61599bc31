"""The admin API: tenant isolation on every route, keys, listings, replays, idempotent ingest,
secret rotation and retention, against real servers."""

from __future__ import annotations

import asyncio
import base64
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks.webhooks import Webhook

from hookrelay.api.routes import add_routes
from hookrelay.events import build_event
from hookrelay.ids import new_id
from hookrelay.settings import Settings
from hookrelay.storage import Storage
from hookrelay.worker.retention import retention_turn
from tests.integration.api_calls import (
    add_endpoint,
    bearer,
    create_app_with_key,
    get_json,
    post_json,
    send_event,
    wait_for_delivery_status,
    wait_until,
)
from tests.receiver import Fault, Receiver

Client = TestClient  # type: ignore[type-arg]


def app_routes() -> list[tuple[str, str]]:
    """Every (method, path template) under /v1/apps/{app_id}, read from the router itself."""
    app = web.Application()
    add_routes(app)
    routes = []
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path.startswith("/v1/apps/{app_id}") and route.method != "HEAD":
            routes.append((route.method, path))
    return routes


def fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


@pytest.mark.usefixtures("worker")
async def test_every_app_route_hides_another_apps_resources(
    api: Client, receiver: Receiver
) -> None:
    mine = await create_app_with_key(api, "mine")
    theirs = await create_app_with_key(api, "theirs")
    endpoint = await add_endpoint(api, theirs, f"{receiver.url}/hook")
    event = await send_event(api, theirs, "image.ready", {"n": 1})
    detail = await wait_for_delivery_status(api, theirs, event["id"], "succeeded")
    await send_event(api, theirs, "job.queued", {"job_id": "job_1"})
    [key] = (await get_json(api, theirs, "/keys"))["data"]
    values = {
        "job_id": "job_1",
        "app_id": theirs["id"],
        "endpoint_id": endpoint["id"],
        "event_id": event["id"],
        "delivery_id": detail["deliveries"][0]["id"],
        "key_id": key["id"],
    }
    routes = app_routes()
    assert len(routes) >= 20
    for method, template in routes:
        path = fill(template, values)
        response = await api.request(method, path, json={}, headers=bearer(mine["api_key"]))
        assert response.status == 404, (method, template, response.status)
        assert (await response.json())["error"]["code"] == "not_found"
        response = await api.request(method, path, json={})
        assert response.status == 401, (method, template)
    # Nothing of theirs changed: the endpoint and the key are still there.
    assert (await get_json(api, theirs, f"/endpoints/{endpoint['id']}"))["status"] == "active"
    assert (await get_json(api, theirs, "/keys"))["data"][0]["revoked_at"] is None


async def test_app_keys_are_listed_by_prefix_and_stop_working_when_revoked(api: Client) -> None:
    app = await create_app_with_key(api)
    status, created = await post_json(api, app, "/keys", {"name": "ci"})
    assert status == 201
    new_key = created["key"]
    listed = (await get_json(api, app, "/keys"))["data"]
    assert [k["name"] for k in listed] == ["default", "ci"]
    assert all("key" not in k and "hash" not in str(k) for k in listed)
    assert listed[1]["prefix"] == new_key[:12]

    other = {**app, "api_key": new_key}
    assert (await get_json(api, other, "/endpoints"))["data"] == []
    response = await api.delete(
        f"/v1/apps/{app['id']}/keys/{created['id']}", headers=bearer(app["api_key"])
    )
    assert response.status == 200
    assert (await response.json())["revoked_at"] is not None
    response = await api.get(f"/v1/apps/{app['id']}/endpoints", headers=bearer(new_key))
    assert response.status == 401


@pytest.mark.usefixtures("worker")
async def test_dead_letters_are_found_by_filter_and_replayed_with_their_webhook_id(
    api: Client, receiver: Receiver
) -> None:
    fault = Fault(receiver, "/flaky")
    app = await create_app_with_key(api)
    flaky = await add_endpoint(api, app, f"{receiver.url}/flaky")
    steady = await add_endpoint(api, app, f"{receiver.url}/steady")
    events = [await send_event(api, app, "image.ready", {"n": n}) for n in range(5)]
    for event in events:
        await wait_for_delivery_status(api, app, event["id"], "dead", endpoint_id=flaky["id"])

    dead = await get_json(api, app, f"/deliveries?status=dead&endpoint_id={flaky['id']}")
    assert len(dead["data"]) == 5
    assert all(d["event_type"] == "image.ready" for d in dead["data"])
    page1 = await get_json(api, app, f"/deliveries?status=dead&endpoint_id={flaky['id']}&limit=2")
    assert len(page1["data"]) == 2 and page1["next_cursor"]
    page2 = await get_json(
        api, app, f"/deliveries?status=dead&limit=2&cursor={page1['next_cursor']}"
    )
    assert {d["id"] for d in page1["data"]}.isdisjoint(d["id"] for d in page2["data"])
    assert (await get_json(api, app, f"/deliveries?endpoint_id={steady['id']}&status=dead"))[
        "data"
    ] == []

    status, counted = await post_json(
        api, app, "/deliveries/replay", {"status": "dead", "dry_run": True}
    )
    assert (status, counted) == (202, {"matched": 5, "replayed": 0, "replayable": 5})
    fault.fixed = True
    before = len(receiver.at("/flaky"))
    status, result = await post_json(api, app, "/deliveries/replay", {"endpoint_id": flaky["id"]})
    assert (status, result) == (202, {"matched": 5, "replayed": 5, "replayable": 5})
    await receiver.wait_for(before + 5, "/flaky")
    replayed = receiver.at("/flaky")[before:]
    assert {r.headers["webhook-id"] for r in replayed} == {e["id"] for e in events}
    verified = Webhook(flaky["secret"]).verify(replayed[0].body, replayed[0].headers)
    assert verified["type"] == "image.ready"


@pytest.mark.usefixtures("worker")
async def test_one_delivery_is_replayed_as_a_new_delivery(api: Client, receiver: Receiver) -> None:
    app = await create_app_with_key(api)
    await add_endpoint(api, app, f"{receiver.url}/hook")
    event = await send_event(api, app, "image.ready", {"n": 1})
    detail = await wait_for_delivery_status(api, app, event["id"], "succeeded")
    original = detail["deliveries"][0]["id"]
    status, replay = await post_json(api, app, f"/deliveries/{original}/replay", {})
    assert status == 202 and replay["replay_of"] == original
    await receiver.wait_for(2)
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == event["id"]
    await wait_for_delivery_status(api, app, event["id"], "succeeded")
    new = await get_json(api, app, f"/deliveries/{replay['id']}")
    assert new["replay_of"] == original
    assert [a["attempt_number"] for a in new["attempts"]] == [1]
    old = await get_json(api, app, f"/deliveries/{original}")
    assert old["replay_of"] is None
    assert len(old["attempts"]) == 1  # the original chain is left as it was


@pytest.mark.usefixtures("worker")
async def test_recover_resends_an_endpoints_failures_within_the_window(
    api: Client, receiver: Receiver
) -> None:
    fault = Fault(receiver)
    app = await create_app_with_key(api)
    endpoint = await add_endpoint(api, app, f"{receiver.url}/hook")
    old = await send_event(api, app, "image.ready", {"n": "old"})
    await wait_for_delivery_status(api, app, old["id"], "dead")
    await asyncio.sleep(0.05)
    since = datetime.now(UTC)
    new = await send_event(api, app, "image.ready", {"n": "new"})
    await wait_for_delivery_status(api, app, new["id"], "dead")
    fault.fixed = True
    before = len(receiver.requests)
    status, result = await post_json(
        api, app, f"/endpoints/{endpoint['id']}/recover", {"since": since.isoformat()}
    )
    assert (status, result) == (202, {"matched": 1, "replayed": 1, "replayable": 1})
    await receiver.wait_for(before + 1)
    await asyncio.sleep(0.2)
    assert [r.headers["webhook-id"] for r in receiver.requests[before:]] == [new["id"]]


async def test_replaying_to_a_disabled_endpoint_is_refused(api: Client, settings: Settings) -> None:
    import asyncpg

    app = await create_app_with_key(api)
    endpoint = await add_endpoint(api, app, "http://127.0.0.1:9/hook")
    connection = await asyncpg.connect(settings.database_url)
    try:
        await connection.execute(
            "UPDATE endpoints SET status = 'disabled', disabled_reason = 'gone' WHERE id = $1",
            endpoint["id"],
        )
    finally:
        await connection.close()
    status, body = await post_json(
        api, app, f"/endpoints/{endpoint['id']}/recover", {"since": "2020-01-01T00:00:00Z"}
    )
    assert status == 409
    assert "disabled" in body["error"]["message"]


async def test_idempotency_key_returns_the_first_answer_and_stores_nothing_new(
    api: Client,
) -> None:
    app = await create_app_with_key(api)
    headers = {**bearer(app["api_key"]), "Idempotency-Key": "order-42"}
    body = {"type": "image.ready", "data": {"n": 1}}
    path = f"/v1/apps/{app['id']}/events"
    first = await api.post(path, json=body, headers=headers)
    again = await api.post(path, json=body, headers=headers)
    assert first.status == again.status == 202
    assert await first.json() == await again.json()
    other = await api.post(path, json={**body, "data": {"n": 2}}, headers=headers)
    assert other.status == 409
    assert (await other.json())["error"]["code"] == "conflict"
    assert len((await get_json(api, app, "/events"))["data"]) == 1


async def test_one_idempotency_key_on_the_single_and_the_batch_route_binds_each_apart(
    api: Client,
) -> None:
    app = await create_app_with_key(api)
    headers = {**bearer(app["api_key"]), "Idempotency-Key": "order-7"}
    event = {"type": "image.ready", "data": {"n": 1}}
    single = await api.post(f"/v1/apps/{app['id']}/events", json=event, headers=headers)
    batch = await api.post(
        f"/v1/apps/{app['id']}/events/batch", json={"events": [event]}, headers=headers
    )
    assert single.status == batch.status == 202
    single_answer, batch_answer = await single.json(), await batch.json()
    assert set(batch_answer) == {"data"}
    assert len(batch_answer["data"]) == 1 and batch_answer["data"][0]["id"] != single_answer["id"]
    again = await api.post(
        f"/v1/apps/{app['id']}/events/batch", json={"events": [event]}, headers=headers
    )
    assert await again.json() == batch_answer
    listed = await get_json(api, app, "/events")
    assert {e["id"] for e in listed["data"]} == {single_answer["id"], batch_answer["data"][0]["id"]}


async def test_concurrent_requests_with_one_idempotency_key_make_one_event(api: Client) -> None:
    app = await create_app_with_key(api)
    headers = {**bearer(app["api_key"]), "Idempotency-Key": "race"}
    body = {"type": "image.ready", "data": {"n": 1}}
    responses = await asyncio.gather(
        *(api.post(f"/v1/apps/{app['id']}/events", json=body, headers=headers) for _ in range(8))
    )
    answers = [await r.json() for r in responses]
    assert {r.status for r in responses} == {202}
    assert len({a["id"] for a in answers}) == 1
    assert len((await get_json(api, app, "/events"))["data"]) == 1


@pytest.mark.usefixtures("worker")
async def test_a_batch_of_events_is_recorded_and_delivered(api: Client, receiver: Receiver) -> None:
    app = await create_app_with_key(api)
    await add_endpoint(api, app, f"{receiver.url}/hook")
    batch = {"events": [{"type": "image.ready", "data": {"n": n}} for n in range(50)]}
    status, answer = await post_json(api, app, "/events/batch", batch)
    assert status == 202 and len(answer["data"]) == 50
    await receiver.wait_for(50)
    assert {r.headers["webhook-id"] for r in receiver.requests} == {e["id"] for e in answer["data"]}


async def test_a_batch_with_one_bad_event_records_none(api: Client) -> None:
    app = await create_app_with_key(api)
    events = [
        {"type": "image.ready", "data": {}},
        {"type": "job.progress", "data": {"job_id": "j"}},
    ]
    status, body = await post_json(api, app, "/events/batch", {"events": events})
    assert status == 422
    assert body["error"]["details"][0]["path"].startswith("$.events[1].data")
    assert (await get_json(api, app, "/events"))["data"] == []


@pytest.mark.usefixtures("worker")
async def test_during_rotation_deliveries_verify_with_the_old_and_the_new_secret(
    api: Client, receiver: Receiver
) -> None:
    app = await create_app_with_key(api)
    endpoint = await add_endpoint(api, app, f"{receiver.url}/hook")
    old_secret = endpoint["secret"]
    status, rotated = await post_json(api, app, f"/endpoints/{endpoint['id']}/rotate-secret", {})
    assert status == 200 and rotated["secret"] != old_secret
    assert rotated["previous_secret_expires_at"] is not None
    await send_event(api, app, "image.ready", {"n": 1})
    await receiver.wait_for(1)
    [received] = receiver.requests
    assert len(received.headers["webhook-signature"].split()) == 2
    for secret in (old_secret, rotated["secret"]):
        assert Webhook(secret).verify(received.body, received.headers)["data"] == {"n": 1}


@pytest.mark.usefixtures("worker")
async def test_ed25519_deliveries_verify_with_the_public_key(
    api: Client, receiver: Receiver
) -> None:
    app = await create_app_with_key(api)
    endpoint = await add_endpoint(api, app, f"{receiver.url}/hook", signing="ed25519")
    assert endpoint["secret"].startswith("whsk_")
    assert endpoint["public_key"].startswith("whpk_")
    event = await send_event(api, app, "image.ready", {"n": 1})
    await receiver.wait_for(1)
    [received] = receiver.requests
    scheme, signature = received.headers["webhook-signature"].split(",", 1)
    assert scheme == "v1a"
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(endpoint["public_key"][5:]))
    signed = f"{event['id']}.{received.headers['webhook-timestamp']}.".encode() + received.body
    public.verify(base64.b64decode(signature), signed)  # raises if it does not verify


async def test_events_older_than_the_retention_are_never_served(
    api: Client, settings: Settings
) -> None:
    # Forty days old, in a partition that also holds newer rows (the first one): not dropped
    # yet, but past the 30-day retention, so no read of the API shows it or its deliveries.
    app = await create_app_with_key(api)
    await add_endpoint(api, app, "http://127.0.0.1:9/hook")
    storage = await Storage.open(settings.require_database_url())
    try:
        forty_days_ago = datetime.now(UTC) - timedelta(days=40)
        old = build_event(app["id"], "image.ready", {}, None, forty_days_ago)
        old = replace(old, id=new_id("evt_", now_ms=round(forty_days_ago.timestamp() * 1000)))
        await storage.events.insert(old)
        fresh = build_event(app["id"], "image.ready", {}, None, datetime.now(UTC))
        await storage.events.insert(fresh)
        turn = await retention_turn(storage, 30 * 86400, settings.partition_interval_s, 60)
        assert turn is not None and turn.dropped == []
        # One turn per interval, however many workers ask.
        assert await retention_turn(storage, 30 * 86400, settings.partition_interval_s, 60) is None
    finally:
        await storage.close()
    listed = (await get_json(api, app, "/events"))["data"]
    assert [e["id"] for e in listed] == [fresh.id]
    missing = await api.get(f"/v1/apps/{app['id']}/events/{old.id}", headers=bearer(app["api_key"]))
    assert missing.status == 404
    assert (await get_json(api, app, "/deliveries"))["data"][0]["event_id"] == fresh.id


@pytest.mark.usefixtures("worker")
async def test_the_summary_stats_and_lost_listing_follow_failures_and_their_recovery(
    api: Client, receiver: Receiver
) -> None:
    fault = Fault(receiver, "/flaky")
    app = await create_app_with_key(api)
    flaky = await add_endpoint(api, app, f"{receiver.url}/flaky")
    steady = await add_endpoint(api, app, f"{receiver.url}/steady")
    await add_endpoint(api, app, f"{receiver.url}/paused", event_types=["nothing.here"])
    paused = (await get_json(api, app, "/endpoints"))["data"][-1]
    await api.patch(
        f"/v1/apps/{app['id']}/endpoints/{paused['id']}",
        json={"status": "paused"},
        headers=bearer(app["api_key"]),
    )
    events = [await send_event(api, app, "image.ready", {"n": n}) for n in range(3)]
    for event in events:
        await wait_for_delivery_status(api, app, event["id"], "dead", endpoint_id=flaky["id"])
        await wait_for_delivery_status(api, app, event["id"], "succeeded", endpoint_id=steady["id"])

    summary = await get_json(api, app, "/summary")
    assert summary["endpoints"] == {
        "total": 3,
        "active": 2,
        "paused": 1,
        "disabled": 0,
        "failing": 1,
    }
    assert summary["lost"] == {"count": 3, "more": False}
    stats = await get_json(api, app, f"/endpoints/{flaky['id']}/stats")
    attempts = 3 * 3  # the test settings' schedule: three attempts each
    assert stats["last_hour"] == {
        "attempts": attempts,
        "more": False,
        "succeeded": 0,
        "success_rate": 0,
    }
    assert stats["last_day"] == stats["last_hour"]
    assert stats["failing_since"] is not None
    assert stats["waiting"] == {"count": 0, "more": False, "oldest_id": None, "oldest_at": None}
    assert stats["lost"] == {"count": 3, "more": False}
    healthy = await get_json(api, app, f"/endpoints/{steady['id']}/stats")
    assert healthy["last_day"] == {"attempts": 3, "more": False, "succeeded": 3, "success_rate": 1}

    lost = await get_json(api, app, "/deliveries?status=dead&lost=true")
    assert len(lost["data"]) == 3
    fault.fixed = True
    await post_json(api, app, "/deliveries/replay", {})

    async def recovered() -> bool:
        return (await get_json(api, app, "/deliveries?lost=true"))["data"] == []

    await wait_until(recovered, "every lost delivery recovered")
    assert len((await get_json(api, app, "/deliveries?status=dead"))["data"]) == 3  # still dead
    assert (await get_json(api, app, "/summary"))["lost"] == {"count": 0, "more": False}
