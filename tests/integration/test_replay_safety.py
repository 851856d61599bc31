"""Replay that is safe to repeat: a recovered delivery is not sent again, a replay in flight is
not doubled, failed replays do not multiply what is lost, against real servers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hookrelay.ids import new_id
from hookrelay.settings import Settings
from hookrelay.storage.sql import queries
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
from tests.receiver import Fault, Received, Receiver

Client = TestClient  # type: ignore[type-arg]
# Long enough for a worker to have sent anything it was going to send.
QUIET_S = 0.5


async def dead_deliveries(
    api: Client, app: dict[str, Any], count: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """`count` events whose only delivery went dead; the events and their deliveries' ids."""
    events = [await send_event(api, app, "image.ready", {"n": n}) for n in range(count)]
    ids = []
    for event in events:
        detail = await wait_for_delivery_status(api, app, event["id"], "dead")
        ids += [d["id"] for d in detail["deliveries"]]
    return events, ids


async def failing_app(
    api: Client, receiver: Receiver, count: int
) -> tuple[Fault, dict[str, Any], tuple[list[dict[str, Any]], list[str]]]:
    """An app whose one endpoint fails until its switch is turned, with `count` dead
    deliveries: the switch, the app, and the events with their deliveries' ids."""
    switch = Fault(receiver)
    app = await create_app_with_key(api)
    await add_endpoint(api, app, f"{receiver.url}/hook")
    return switch, app, await dead_deliveries(api, app, count)


async def wait_until_recovered(api: Client, app: dict[str, Any], originals: list[str]) -> None:
    async def all_recovered() -> bool:
        return all([(await delivery(api, app, d))["recovered_at"] for d in originals])

    await wait_until(all_recovered, "every original recovered")


async def delivery(api: Client, app: dict[str, Any], delivery_id: str) -> dict[str, Any]:
    found: dict[str, Any] = await get_json(api, app, f"/deliveries/{delivery_id}")
    return found


@pytest.mark.usefixtures("worker")
async def test_second_bulk_replay_sends_nothing(api: Client, receiver: Receiver) -> None:
    switch, app, (events, originals) = await failing_app(api, receiver, 3)
    switch.fixed = True
    before = len(receiver.requests)

    status, result = await post_json(api, app, "/deliveries/replay", {})
    assert (status, result) == (202, {"matched": 3, "replayed": 3, "replayable": 3})
    await receiver.wait_for(before + 3)
    assert {r.headers["webhook-id"] for r in receiver.requests[before:]} == {
        e["id"] for e in events
    }
    await wait_until_recovered(api, app, originals)
    for original in originals:
        shown = await delivery(api, app, original)
        assert shown["status"] == "dead"  # its own chain of attempts is left as it was
        replay = await delivery(api, app, shown["recovered_by"])
        assert (replay["replay_of"], replay["status"]) == (original, "succeeded")
    listed = (await get_json(api, app, "/deliveries?status=dead"))["data"]
    assert {d["id"]: d["recovered_by"] is not None for d in listed} == dict.fromkeys(
        originals, True
    )

    status, counted = await post_json(api, app, "/deliveries/replay", {"dry_run": True})
    assert (status, counted) == (202, {"matched": 0, "replayed": 0, "replayable": 0})
    received = len(receiver.requests)
    status, again = await post_json(api, app, "/deliveries/replay", {})
    assert (status, again) == (202, {"matched": 0, "replayed": 0, "replayable": 0})
    await asyncio.sleep(QUIET_S)
    assert len(receiver.requests) == received


@pytest.mark.usefixtures("worker")
async def test_a_replay_in_flight_is_not_replayed_by_a_second_bulk_call(
    api: Client, receiver: Receiver
) -> None:
    _, app, (_, originals) = await failing_app(api, receiver, 3)
    answer = asyncio.Event()

    async def hang(_: Received) -> web.Response:
        await answer.wait()
        return web.Response(status=200)

    receiver.respond = hang
    before = len(receiver.requests)
    status, first = await post_json(api, app, "/deliveries/replay", {})
    assert (status, first["replayed"]) == (202, 3)
    await receiver.wait_for(before + 3)  # the replays are now sending, their answers held back

    status, second = await post_json(api, app, "/deliveries/replay", {"status": "dead"})
    assert (status, second["replayed"]) == (202, 0)
    endpoint_id = (await delivery(api, app, originals[0]))["endpoint_id"]
    status, recovered = await post_json(
        api, app, f"/endpoints/{endpoint_id}/recover", {"since": "1h"}
    )
    assert (status, recovered["replayed"]) == (202, 0)
    answer.set()
    await asyncio.sleep(QUIET_S)
    assert len(receiver.requests) == before + 3


@pytest.mark.usefixtures("worker")
async def test_concurrent_bulk_replays_send_each_delivery_once(
    api: Client, receiver: Receiver, settings: Settings
) -> None:
    switch = Fault(receiver)
    app = await create_app_with_key(api)
    endpoint = await add_endpoint(api, app, f"{receiver.url}/hook")
    events, _ = await dead_deliveries(api, app, 6)
    switch.fixed = True
    before = len(receiver.requests)

    # Hold the endpoint's row, which inserting a replay must share (its foreign key): one bulk
    # replay is then inside its batch, having read what is still lost, and waits for the row;
    # the other waits for the app's replay lock, before it reads anything.
    holder = await asyncpg.connect(settings.database_url)
    watcher = await asyncpg.connect(settings.database_url)
    try:
        async with holder.transaction():
            await holder.execute("SELECT 1 FROM endpoints WHERE id = $1 FOR UPDATE", endpoint["id"])
            holder_pid = holder.get_server_pid()
            calls = [
                asyncio.ensure_future(post_json(api, app, "/deliveries/replay", {}))
                for _ in range(2)
            ]

            async def both_waiting() -> bool:
                row = await watcher.fetchrow(
                    "SELECT count(*) FILTER (WHERE wait_event = 'advisory') AS for_the_app,"
                    "       count(*) FILTER (WHERE $1 = ANY (pg_blocking_pids(pid))"
                    "                          AND starts_with(query, $2)) AS for_the_row"
                    " FROM pg_stat_activity WHERE datname = current_database()",
                    holder_pid,
                    # The bulk replay's statement (its start: Postgres shows the first 1 kB).
                    queries()["replay_deliveries"][:500],
                )
                assert row is not None
                return (row["for_the_app"], row["for_the_row"]) == (1, 1)

            await wait_until(both_waiting)
    finally:
        await holder.close()
        await watcher.close()
    answers = await asyncio.gather(*calls)
    assert {status for status, _ in answers} == {202}
    assert sorted(result["replayed"] for _, result in answers) == [0, 6]
    await receiver.wait_for(before + 6)
    await asyncio.sleep(QUIET_S)
    sent = [r.headers["webhook-id"] for r in receiver.requests[before:]]
    assert sorted(sent) == sorted(e["id"] for e in events)


@pytest.mark.usefixtures("worker")
async def test_a_replay_that_succeeds_on_a_retry_recovers_its_original(
    api: Client, receiver: Receiver
) -> None:
    _, app, (_, [original]) = await failing_app(api, receiver, 1)
    answers = [500]  # the replay's first attempt fails, its second succeeds

    async def fail_once(_: Received) -> web.Response:
        return web.Response(status=answers.pop() if answers else 200)

    receiver.respond = fail_once
    status, replay = await post_json(api, app, f"/deliveries/{original}/replay", {})
    assert status == 202

    async def recovered() -> bool:
        return (await delivery(api, app, original))["recovered_by"] is not None

    await wait_until(recovered)
    shown = await delivery(api, app, original)
    assert shown["recovered_by"] == replay["id"]
    assert shown["recovered_at"] == (await delivery(api, app, replay["id"]))["finished_at"]
    assert (await delivery(api, app, replay["id"]))["attempt_count"] == 2
    status, counted = await post_json(api, app, "/deliveries/replay", {"dry_run": True})
    assert (status, counted["matched"]) == (202, 0)


@pytest.mark.usefixtures("worker")
async def test_failed_replays_do_not_multiply_lost_deliveries(
    api: Client, receiver: Receiver
) -> None:
    Fault(receiver)  # failing throughout
    app = await create_app_with_key(api)
    await add_endpoint(api, app, f"{receiver.url}/hook")
    events, originals = await dead_deliveries(api, app, 2)

    for _ in range(2):
        status, result = await post_json(api, app, "/deliveries/replay", {})
        assert (status, result["replayed"]) == (202, 2)
        for event in events:
            await wait_for_delivery_status(api, app, event["id"], "dead")
        status, counted = await post_json(api, app, "/deliveries/replay", {"dry_run": True})
        assert (status, counted) == (202, {"matched": 2, "replayed": 0, "replayable": 2})

    dead = (await get_json(api, app, "/deliveries?status=dead"))["data"]
    assert len(dead) == 6  # two originals and four failed replays, each a chain of its own
    replays = [d for d in dead if d["id"] not in originals]
    assert sorted({d["replay_of"] for d in replays}) == sorted(originals)
    assert all(d["recovered_by"] is None for d in dead)


@pytest.mark.usefixtures("worker")
async def test_replay_of_reads_the_same_in_every_view(api: Client, receiver: Receiver) -> None:
    app = await create_app_with_key(api)
    await add_endpoint(api, app, f"{receiver.url}/hook")
    event = await send_event(api, app, "image.ready", {"n": 1})
    detail = await wait_for_delivery_status(api, app, event["id"], "succeeded")
    original = detail["deliveries"][0]["id"]
    status, replay = await post_json(api, app, f"/deliveries/{original}/replay", {})
    assert status == 202
    status, replay_of_replay = await post_json(api, app, f"/deliveries/{replay['id']}/replay", {})
    assert status == 202
    # A replay of a replay names the delivery they both stand for.
    assert replay_of_replay["replay_of"] == original
    await wait_for_delivery_status(api, app, event["id"], "succeeded")

    by_event = (await get_json(api, app, f"/events/{event['id']}"))["deliveries"]
    listed = (await get_json(api, app, f"/deliveries?event_id={event['id']}"))["data"]
    for replay_id in (replay["id"], replay_of_replay["id"]):
        one = await delivery(api, app, replay_id)
        in_event = next(d for d in by_event if d["id"] == replay_id)
        in_list = next(d for d in listed if d["id"] == replay_id)
        assert one["replay_of"] == in_event["replay_of"] == in_list["replay_of"] == original
    shown = await delivery(api, app, original)
    in_event = next(d for d in by_event if d["id"] == original)
    assert shown["replay_of"] is in_event["replay_of"] is None
    # It never was lost, so no replay recovered it.
    assert shown["recovered_by"] is in_event["recovered_by"] is None


async def made_minutes_ago(settings: Settings, delivery_id: str, minutes: int) -> None:
    """Give a delivery the id (ids sort by creation time) and time of one made long ago."""
    made_at = datetime.now(UTC) - timedelta(minutes=minutes)
    connection = await asyncpg.connect(settings.database_url)
    try:
        async with connection.transaction():
            await connection.execute("DELETE FROM attempts WHERE delivery_id = $1", delivery_id)
            await connection.execute(
                "UPDATE deliveries SET id = $2, created_at = $3 WHERE id = $1",
                delivery_id,
                new_id("dlv_", int(made_at.timestamp() * 1000)),
                made_at,
            )
    finally:
        await connection.close()


@pytest.mark.usefixtures("worker")
async def test_recover_takes_a_relative_window(
    api: Client, receiver: Receiver, settings: Settings
) -> None:
    switch = Fault(receiver)
    app = await create_app_with_key(api)
    endpoint = await add_endpoint(api, app, f"{receiver.url}/hook")
    _, [old] = await dead_deliveries(api, app, 1)
    await made_minutes_ago(settings, old, 30)
    [new], _ = await dead_deliveries(api, app, 1)
    switch.fixed = True
    before = len(receiver.requests)

    path = f"/endpoints/{endpoint['id']}/recover"
    status, counted = await post_json(api, app, path, {"since": "10m", "dry_run": True})
    assert (status, counted) == (202, {"matched": 1, "replayed": 0, "replayable": 1})
    status, result = await post_json(api, app, "/deliveries/replay", {"since": "10m"})
    assert (status, result["replayed"]) == (202, 1)
    await receiver.wait_for(before + 1)
    await asyncio.sleep(QUIET_S)
    assert [r.headers["webhook-id"] for r in receiver.requests[before:]] == [new["id"]]
    # Until is "that long ago" too: the older one only.
    status, counted = await post_json(
        api, app, path, {"since": "1h", "until": "10m", "dry_run": True}
    )
    assert (status, counted["matched"]) == (202, 1)


@pytest.mark.parametrize("since", ["yesterday", "-1h", "1w", "2026-01-02T03:04:05"])
async def test_a_window_that_is_neither_a_time_nor_a_duration_is_refused(
    api: Client, since: str
) -> None:
    app = await create_app_with_key(api)
    endpoint = await add_endpoint(api, app, "http://127.0.0.1:9/hook")
    for path in (f"/endpoints/{endpoint['id']}/recover", "/deliveries/replay"):
        status, body = await post_json(api, app, path, {"since": since})
        assert status == 422, body
        assert body["error"]["details"][0]["path"] == "$.since"


@pytest.mark.parametrize(
    "window",
    [
        {"since": "10m", "until": "1h"},  # "that long ago": an hour ago is before ten minutes ago
        {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        {"since": "2026-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
    ],
)
async def test_a_window_that_ends_before_it_begins_is_refused(
    api: Client, window: dict[str, str]
) -> None:
    app = await create_app_with_key(api)
    endpoint = await add_endpoint(api, app, "http://127.0.0.1:9/hook")
    for path in (f"/endpoints/{endpoint['id']}/recover", "/deliveries/replay"):
        status, body = await post_json(api, app, path, {**window, "dry_run": True})
        assert status == 422, body
        assert body["error"]["message"] == "until must be later than since"
        assert body["error"]["details"][0]["path"] == "$.until"


@pytest.mark.usefixtures("worker")
async def test_bulk_replay_without_a_body_replays_every_lost_delivery(
    api: Client, receiver: Receiver
) -> None:
    switch = Fault(receiver)
    app = await create_app_with_key(api)
    await add_endpoint(api, app, f"{receiver.url}/one")
    await add_endpoint(api, app, f"{receiver.url}/two")
    events, _ = await dead_deliveries(api, app, 2)
    switch.fixed = True
    before = len(receiver.requests)

    response = await api.post(
        f"/v1/apps/{app['id']}/deliveries/replay", headers=bearer(app["api_key"])
    )
    assert response.status == 202, await response.text()
    assert (await response.json())["replayed"] == 4
    await receiver.wait_for(before + 4)
    sent = {(r.path, r.headers["webhook-id"]) for r in receiver.requests[before:]}
    assert sent == {(p, e["id"]) for p in ("/one", "/two") for e in events}


@pytest.mark.usefixtures("worker")
async def test_include_replayed_asks_for_recovered_deliveries_again(
    api: Client, receiver: Receiver
) -> None:
    switch, app, (events, originals) = await failing_app(api, receiver, 2)
    switch.fixed = True
    before = len(receiver.requests)
    assert (await post_json(api, app, "/deliveries/replay", {}))[1]["replayed"] == 2
    await wait_until_recovered(api, app, originals)
    status, result = await post_json(api, app, "/deliveries/replay", {"include_replayed": True})
    assert (status, result["replayed"]) == (202, 2)
    await receiver.wait_for(before + 4)
    assert sorted(r.headers["webhook-id"] for r in receiver.requests[before:]) == sorted(
        e["id"] for e in events for _ in range(2)
    )
