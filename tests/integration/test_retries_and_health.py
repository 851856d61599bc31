"""Retries, dead letters, endpoint health, limits and the sweeper, against real servers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import structlog
import structlog.testing
from aiohttp import web
from aiohttp.test_utils import TestClient

from hookrelay.events import build_event
from hookrelay.models import ClaimedDelivery, Event
from hookrelay.settings import Settings
from hookrelay.storage import Storage
from hookrelay.storage.db import field_order
from tests.integration.api_calls import (
    add_endpoint,
    bearer,
    create_app_with_key,
    send_event,
    wait_for_delivery_status,
)
from tests.receiver import Received, Receiver

pytestmark = pytest.mark.usefixtures("worker")
Client = TestClient  # type: ignore[type-arg]


def answer(status: int, **headers: str) -> Any:
    async def respond(_: Received) -> web.Response:
        return web.Response(status=status, text="nope", headers=headers)

    return respond


async def get_json(api: Client, app: dict[str, Any], path: str) -> Any:
    response = await api.get(f"/v1/apps/{app['id']}{path}", headers=bearer(app["api_key"]))
    assert response.status == 200, await response.text()
    return orjson.loads(await response.read())


@asynccontextmanager
async def unqueued_delivery(
    settings: Settings, api: Client, receiver: Receiver
) -> AsyncIterator[tuple[dict[str, Any], Storage, Event, str]]:
    """An event with one delivery to the receiver, written to Postgres by hand and never
    enqueued, and storage to look at it with."""
    app = await create_app_with_key(api)
    await add_endpoint(api, app, f"{receiver.url}/hook")
    storage = await Storage.open(settings.require_database_url())
    try:
        event = build_event(app["id"], "image.ready", {"n": 1}, None, datetime.now(UTC))
        [delivery_id] = await storage.events.insert(event)
        yield app, storage, event, delivery_id
    finally:
        await storage.close()


async def test_dead_letter_after_the_last_attempt_reports_delivery_dead(
    api: Client, receiver: Receiver
) -> None:
    receiver.respond = answer(500)
    app = await create_app_with_key(api)
    failing = await add_endpoint(api, app, f"{receiver.url}/failing", event_types=["job.queued"])
    await add_endpoint(api, app, f"{receiver.url}/ops", event_types=["delivery.dead"])
    event = await send_event(api, app, "job.queued", {"job_id": "j1"})

    detail = await wait_for_delivery_status(api, app, event["id"], "dead")
    [delivery] = detail["deliveries"]
    assert delivery["attempt_count"] == 3  # the first attempt and the two retries of the schedule
    assert delivery["finished_at"] is not None
    assert delivery["last_error"] == "the receiver answered 500"
    attempts = (await get_json(api, app, f"/deliveries/{delivery['id']}"))["attempts"]
    assert [a["attempt_number"] for a in attempts] == [1, 2, 3]
    assert {a["status_code"] for a in attempts} == {500}

    await receiver.wait_for(1, "/ops")
    [report] = receiver.at("/ops")
    body = orjson.loads(report.body)
    assert body["type"] == "delivery.dead"
    assert body["data"]["delivery_id"] == delivery["id"]
    assert body["data"]["endpoint_id"] == failing["id"]
    assert body["data"]["attempts"] == 3


async def test_a_dead_lettered_delivery_is_logged_as_a_warning(
    api: Client, receiver: Receiver
) -> None:
    receiver.respond = answer(500)
    app = await create_app_with_key(api)
    await add_endpoint(api, app, f"{receiver.url}/failing")
    with structlog.testing.capture_logs() as logs:
        event = await send_event(api, app, "job.queued", {"job_id": "j1"})
        [delivery] = (await wait_for_delivery_status(api, app, event["id"], "dead"))["deliveries"]
        for _ in range(100):  # the line follows the commit that the API has just shown
            dead = [line for line in logs if line.get("delivery_id") == delivery["id"]]
            if len(dead) == 3:
                break
            await asyncio.sleep(0.02)
    levels = [(line["log_level"], line["event"], line["attempt"]) for line in dead]
    assert levels == [
        ("info", "delivery attempted", 1),
        ("info", "delivery attempted", 2),
        ("warning", "delivery dead-lettered", 3),
    ]
    assert dead[-1]["status_code"] == 500


async def test_operational_events_reach_only_endpoints_that_name_them(
    api: Client, receiver: Receiver
) -> None:
    receiver.respond = answer(500)
    app = await create_app_with_key(api)
    await add_endpoint(api, app, f"{receiver.url}/everything")
    event = await send_event(api, app, "job.queued", {"job_id": "j1"})
    await wait_for_delivery_status(api, app, event["id"], "dead")
    await asyncio.sleep(0.3)
    # Three attempts at the event itself; the delivery.dead report was not sent here.
    assert len(receiver.at("/everything")) == 3


async def test_410_gone_disables_the_endpoint_at_once(api: Client, receiver: Receiver) -> None:
    receiver.respond = answer(410)
    app = await create_app_with_key(api)
    gone = await add_endpoint(api, app, f"{receiver.url}/gone", event_types=["job.queued"])
    await add_endpoint(api, app, f"{receiver.url}/ops", event_types=["endpoint.disabled"])
    first = await send_event(api, app, "job.queued", {"job_id": "j1"})

    detail = await wait_for_delivery_status(api, app, first["id"], "dead")
    assert detail["deliveries"][0]["attempt_count"] == 1
    endpoint = await get_json(api, app, f"/endpoints/{gone['id']}")
    assert endpoint["status"] == "disabled"
    assert "410" in endpoint["disabled_reason"]
    await receiver.wait_for(1, "/ops")
    report = orjson.loads(receiver.at("/ops")[0].body)
    assert report["type"] == "endpoint.disabled"
    assert report["data"]["endpoint_id"] == gone["id"]

    second = await send_event(api, app, "job.queued", {"job_id": "j2"})
    await wait_for_delivery_status(api, app, second["id"], "held")
    assert len(receiver.at("/gone")) == 1


@pytest.mark.settings(disable_after_dead=2, retry_schedule_s=(0.02,))
async def test_a_run_of_dead_deliveries_disables_the_endpoint(
    api: Client, receiver: Receiver
) -> None:
    receiver.respond = answer(503)
    app = await create_app_with_key(api)
    endpoint = await add_endpoint(api, app, f"{receiver.url}/down")
    for job in ("j1", "j2"):
        event = await send_event(api, app, "job.queued", {"job_id": job})
        await wait_for_delivery_status(api, app, event["id"], "dead")
    got = await get_json(api, app, f"/endpoints/{endpoint['id']}")
    assert got["status"] == "disabled"
    assert got["disabled_reason"] == "2 deliveries in a row were dead-lettered"


@pytest.mark.settings(disable_after_failing_s=0.15, retry_schedule_s=(0.1, 0.1, 0.1, 0.1))
async def test_an_endpoint_failing_for_the_whole_window_is_disabled(
    api: Client, receiver: Receiver
) -> None:
    receiver.respond = answer(500)
    app = await create_app_with_key(api)
    endpoint = await add_endpoint(api, app, f"{receiver.url}/down")
    event = await send_event(api, app, "job.queued", {"job_id": "j1"})
    # Disabled between retries: the delivery is held, to go out if the endpoint is re-enabled.
    detail = await wait_for_delivery_status(api, app, event["id"], "held")
    assert detail["deliveries"][0]["attempt_count"] >= 2
    got = await get_json(api, app, f"/endpoints/{endpoint['id']}")
    assert got["status"] == "disabled"
    assert got["disabled_reason"].startswith("every attempt has failed since")


async def test_success_after_failures_reports_delivery_recovered(
    api: Client, receiver: Receiver
) -> None:
    answers = iter([500, 500, 200])

    async def flaky(received: Received) -> web.Response:
        if received.path == "/ops":
            return web.Response(text="ok")
        return web.Response(status=next(answers))

    receiver.respond = flaky
    app = await create_app_with_key(api)
    await add_endpoint(api, app, f"{receiver.url}/flaky", event_types=["job.queued"])
    await add_endpoint(api, app, f"{receiver.url}/ops", event_types=["delivery.recovered"])
    event = await send_event(api, app, "job.queued", {"job_id": "j1"})
    await wait_for_delivery_status(api, app, event["id"], "succeeded")
    await receiver.wait_for(1, "/ops")
    report = orjson.loads(receiver.at("/ops")[0].body)
    assert report["type"] == "delivery.recovered"
    assert report["data"]["attempts"] == 3


@pytest.mark.settings(retry_schedule_s=(0.3,))
async def test_retry_after_is_honoured_but_clamped_to_twice_the_schedule(
    api: Client, receiver: Receiver
) -> None:
    arrivals: list[float] = []
    answers = iter([(429, "3600"), (200, None)])

    async def throttling(_: Received) -> web.Response:
        arrivals.append(time.monotonic())
        status, retry_after = next(answers)
        return web.Response(status=status, headers={"Retry-After": retry_after or "0"})

    receiver.respond = throttling
    app = await create_app_with_key(api)
    await add_endpoint(api, app, f"{receiver.url}/busy")
    event = await send_event(api, app, "job.queued", {"job_id": "j1"})
    await wait_for_delivery_status(api, app, event["id"], "succeeded")
    gap = arrivals[1] - arrivals[0]
    # Retry-After asked for an hour; the clamp allows at most 2 x 0.3 s (plus polling slack).
    assert 0.55 <= gap <= 1.2, gap


@pytest.mark.settings(retry_schedule_s=(0.4,))
async def test_retry_after_shorter_than_the_schedule_waits_for_the_schedule(
    api: Client, receiver: Receiver
) -> None:
    arrivals: list[float] = []
    answers = iter([503, 200])

    async def unavailable(_: Received) -> web.Response:
        arrivals.append(time.monotonic())
        return web.Response(status=next(answers), headers={"Retry-After": "0"})

    receiver.respond = unavailable
    app = await create_app_with_key(api)
    await add_endpoint(api, app, f"{receiver.url}/busy")
    event = await send_event(api, app, "job.queued", {"job_id": "j1"})
    await wait_for_delivery_status(api, app, event["id"], "succeeded")
    assert arrivals[1] - arrivals[0] >= 0.39


@pytest.mark.timed  # the spacing of arrivals: a start held up 0.25 s by a busy machine breaks it
async def test_rate_limit_defers_deliveries_without_using_attempts(
    api: Client, receiver: Receiver
) -> None:
    arrivals: list[float] = []

    async def timed(_: Received) -> web.Response:
        arrivals.append(time.monotonic())
        return web.Response(text="ok")

    receiver.respond = timed
    app = await create_app_with_key(api)
    await add_endpoint(api, app, f"{receiver.url}/limited", rate_limit_per_s=5)
    events = [await send_event(api, app, "image.ready", {"n": n}) for n in range(15)]
    for event in events:
        detail = await wait_for_delivery_status(api, app, event["id"], "succeeded")
        assert detail["deliveries"][0]["attempt_count"] == 1
    assert len(arrivals) == 15
    # Starts are spaced 1/5 s apart: no one-second window holds more than five. Arrivals are
    # measured at the receiver, so a start delayed on a busy machine followed by one on time
    # brings two arrivals closer than their starts were: 0.25 s of slack. Without the limit,
    # all fifteen arrive within a few milliseconds.
    assert arrivals[-1] - arrivals[0] >= 14 * 0.2 - 0.25
    for start in range(len(arrivals) - 5):
        assert arrivals[start + 5] - arrivals[start] >= 1.0 - 0.25


@pytest.mark.timed
@pytest.mark.settings(endpoint_concurrency=2, delivery_timeout_s=5.0)
async def test_a_slow_endpoint_does_not_hold_up_the_others(api: Client, receiver: Receiver) -> None:
    async def slow_on_one_path(received: Received) -> web.Response:
        if received.path == "/slow":
            await asyncio.sleep(1.5)
        return web.Response(text="ok")

    receiver.respond = slow_on_one_path
    app = await create_app_with_key(api)
    await add_endpoint(api, app, f"{receiver.url}/slow", event_types=["job.queued"])
    await add_endpoint(api, app, f"{receiver.url}/fast", event_types=["job.started"])
    for n in range(10):
        await send_event(api, app, "job.queued", {"job_id": f"slow{n}"})
    started = time.monotonic()
    await send_event(api, app, "job.started", {"job_id": "fast"})
    await receiver.wait_for(1, "/fast", timeout_s=5)
    assert time.monotonic() - started < 0.5
    # Only two of the slow deliveries were let through at once.
    assert len(receiver.at("/slow")) <= 2


async def test_sweeper_sends_a_delivery_whose_job_was_lost(
    settings: Settings, api: Client, receiver: Receiver
) -> None:
    # Written to Postgres but never enqueued: as if Redis had lost the job.
    async with unqueued_delivery(settings, api, receiver) as (_, _, event, _):
        pass
    await receiver.wait_for(1, timeout_s=10)
    assert receiver.requests[0].headers["webhook-id"] == event.id


@pytest.mark.settings(delivery_timeout_s=0.2)
async def test_an_expired_lease_is_redelivered_and_counted(
    settings: Settings, api: Client, receiver: Receiver
) -> None:
    async with unqueued_delivery(settings, api, receiver) as (app, storage, event, delivery_id):
        # A worker that claimed the delivery and died before sending it.
        [claimed] = await storage.deliveries.claim([delivery_id], lease_s=0.5)
        assert claimed.status == "sending"
    await receiver.wait_for(1, timeout_s=10)
    detail = await wait_for_delivery_status(api, app, event.id, "succeeded")
    assert detail["deliveries"][0]["attempt_count"] == 2
    await asyncio.sleep(1.2)  # one metrics flush
    response = await api.get("/metrics")
    text = await response.text()
    assert "hookrelay_redeliveries_total 1" in text
    assert 'hookrelay_deliveries_total{outcome="succeeded"} 1' in text
    assert "hookrelay_queue_lag_seconds" in text


async def test_a_binary_answer_with_nul_bytes_is_recorded(api: Client, receiver: Receiver) -> None:
    async def binary(_: Received) -> web.Response:
        return web.Response(body=b"ok\x00\x01\x02", content_type="application/octet-stream")

    receiver.respond = binary
    app = await create_app_with_key(api)
    await add_endpoint(api, app, f"{receiver.url}/hook")
    event = await send_event(api, app, "image.ready", {"n": 1})
    detail = await wait_for_delivery_status(api, app, event["id"], "succeeded")
    [attempt] = (await get_json(api, app, f"/deliveries/{detail['deliveries'][0]['id']}"))[
        "attempts"
    ]
    assert attempt["response_body"].startswith("ok\ufffd")
    assert receiver.requests[0].headers["Accept-Encoding"] == "identity"


@pytest.mark.settings(disable_after_dead=2, retry_schedule_s=(0.02,))
async def test_concurrent_dead_letters_are_all_counted(api: Client, receiver: Receiver) -> None:
    receiver.respond = answer(500)
    app = await create_app_with_key(api)
    endpoint = await add_endpoint(api, app, f"{receiver.url}/down", event_types=["job.queued"])
    await add_endpoint(api, app, f"{receiver.url}/ops", event_types=["endpoint.disabled"])
    events = await asyncio.gather(
        *(send_event(api, app, "job.queued", {"job_id": f"j{n}"}) for n in range(2))
    )
    for event in events:
        await wait_for_delivery_status(api, app, event["id"], "dead")
    got = await get_json(api, app, f"/endpoints/{endpoint['id']}")
    assert got["status"] == "disabled"
    await asyncio.sleep(0.3)
    # One endpoint.disabled, not one per racing attempt (the ops endpoint fails too, so count
    # distinct events, not attempts).
    assert len({r.headers["webhook-id"] for r in receiver.at("/ops")}) == 1


@pytest.mark.settings(disable_after_dead=1, retry_schedule_s=(0.02,))
async def test_re_enabling_an_endpoint_starts_its_health_afresh(
    api: Client, receiver: Receiver
) -> None:
    answers = iter([500, 500, 500, 200])

    async def recovering(_: Received) -> web.Response:
        return web.Response(status=next(answers))

    receiver.respond = recovering
    app = await create_app_with_key(api)
    endpoint = await add_endpoint(api, app, f"{receiver.url}/hook")
    first = await send_event(api, app, "job.queued", {"job_id": "j1"})
    await wait_for_delivery_status(api, app, first["id"], "dead")
    assert (await get_json(api, app, f"/endpoints/{endpoint['id']}"))["status"] == "disabled"

    path = f"/v1/apps/{app['id']}/endpoints/{endpoint['id']}"
    response = await api.patch(path, json={"status": "active"}, headers=bearer(app["api_key"]))
    assert response.status == 200
    # One failure, then a success: a fresh endpoint is not disabled by a single failure.
    second = await send_event(api, app, "job.queued", {"job_id": "j2"})
    await wait_for_delivery_status(api, app, second["id"], "succeeded")
    assert (await get_json(api, app, f"/endpoints/{endpoint['id']}"))["status"] == "active"


async def test_sweeper_releases_a_hold_that_raced_a_resume(
    settings: Settings, api: Client, receiver: Receiver
) -> None:
    import asyncpg

    app = await create_app_with_key(api)
    await add_endpoint(api, app, f"{receiver.url}/hook")
    connection = await asyncpg.connect(settings.database_url)
    try:
        event = build_event(app["id"], "image.ready", {"n": 1}, None, datetime.now(UTC))
        storage = await Storage.open(settings.require_database_url())
        await storage.events.insert(event)
        await storage.close()
        # As if the ingest had seen the endpoint paused just before a resume committed.
        await connection.execute("UPDATE deliveries SET status = 'held'")
    finally:
        await connection.close()
    await receiver.wait_for(1, timeout_s=10)
    await wait_for_delivery_status(api, app, event.id, "succeeded")


async def test_a_request_that_cannot_be_made_is_recorded_and_dead_lettered(
    settings: Settings, api: Client, receiver: Receiver
) -> None:
    import asyncpg

    app = await create_app_with_key(api)
    endpoint = await add_endpoint(api, app, f"{receiver.url}/hook")
    connection = await asyncpg.connect(settings.database_url)
    try:
        # A header value aiohttp refuses to send (the API refuses to store one like it).
        await connection.execute(
            """UPDATE endpoints SET headers = '{"X-Bad": "a\\u0001b"}' WHERE id = $1""",
            endpoint["id"],
        )
    finally:
        await connection.close()
    event = await send_event(api, app, "image.ready", {"n": 1})
    detail = await wait_for_delivery_status(api, app, event["id"], "dead")
    attempts = (await get_json(api, app, f"/deliveries/{detail['deliveries'][0]['id']}"))[
        "attempts"
    ]
    assert [a["error_kind"] for a in attempts] == ["request_error"] * 3
    assert receiver.requests == []


async def test_claimed_rows_are_built_from_their_columns_in_field_order(
    settings: Settings, api: Client, receiver: Receiver
) -> None:
    """The claim's columns are exactly a ClaimedDelivery's fields but the event's (read apart),
    in order, so the hot path builds claims positionally."""
    async with unqueued_delivery(settings, api, receiver) as (_, storage, event, delivery_id):
        async with storage.db.session() as session:
            rolled_back = session.transaction()
            await rolled_back.start()
            [row] = await session.rows("claim_deliveries", [delivery_id], settings.lease_s)
            await rolled_back.rollback()
        [claim] = await storage.deliveries.claim([delivery_id], settings.lease_s)
    assert (*row.keys(), "event_type", "body") == field_order(ClaimedDelivery)
    assert (claim.id, claim.event_type, claim.body) == (delivery_id, event.type, event.body)
