"""Group commit on real Postgres: concurrent single-event requests share one statement and one
commit, and each keeps its own idempotency, its own answer and its own error."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from hookrelay.api.handlers.events import _one
from hookrelay.api.state import INGEST
from hookrelay.errors import Conflict, NotFound
from hookrelay.settings import Settings
from tests.integration.api_calls import ADMIN, add_endpoint, bearer, create_app_with_key
from tests.receiver import Receiver

Client = TestClient  # type: ignore[type-arg]
REQUESTS = 40


async def _ingest_together(
    api: Client, app_id: str, requests: list[tuple[Any, str | None]]
) -> list[Any]:
    """Ingest requests (body, Idempotency-Key) at once, as concurrent handlers do: each is
    validated, then joins the group; all of them join one group. Answers or errors, in order."""
    ingest = api.server.app[INGEST]
    return await asyncio.gather(
        *(ingest.ingest(app_id, [body], key, _one) for body, key in requests),
        return_exceptions=True,
    )


async def subscribed_app(api: Client, receiver: Receiver) -> dict[str, Any]:
    """A new app with one endpoint that takes every event."""
    app = await create_app_with_key(api)
    await add_endpoint(api, app, f"{receiver.url}/hook")
    return app


async def _events(settings: Settings, app_id: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(settings.database_url)
    try:
        return await connection.fetch(
            "SELECT e.id, e.tx_id::text AS tx_id, count(d.id) AS deliveries FROM events AS e"
            " LEFT JOIN deliveries AS d ON d.event_id = e.id WHERE e.app_id = $1"
            " GROUP BY e.id, e.tx_id ORDER BY e.id",
            app_id,
        )
    finally:
        await connection.close()


async def test_concurrent_single_events_share_one_commit(
    api: Client, settings: Settings, receiver: Receiver
) -> None:
    app = await subscribed_app(api, receiver)
    bodies = [
        {"type": "render.step", "data": {"job_id": f"job_{n}", "progress": 0.5}}
        for n in range(REQUESTS)
    ]
    answers = await _ingest_together(api, app["id"], [(body, None) for body in bodies])
    assert all(isinstance(a, dict) for a in answers), answers
    events = await _events(settings, app["id"])
    assert sorted(e["id"] for e in events) == sorted(a["id"] for a in answers)
    assert len({e["tx_id"] for e in events}) == 1  # one transaction for all of them
    assert all(e["deliveries"] == 1 for e in events)


async def test_a_request_postgres_refuses_fails_only_itself(
    api: Client, settings: Settings, receiver: Receiver
) -> None:
    # An app deleted after its request was authenticated: the group's statement fails on that
    # request's foreign key, and its requests are recorded again one by one.
    app = await subscribed_app(api, receiver)
    gone = await create_app_with_key(api, "gone")
    response = await api.delete(f"/v1/apps/{gone['id']}", headers=ADMIN)
    assert response.status == 204, await response.text()
    body = {"type": "render.step", "data": {"n": 1}}
    requests = [(app["id"], body)] * 4 + [(gone["id"], body)] + [(app["id"], body)] * 5
    ingest = api.server.app[INGEST]
    answers = await asyncio.gather(
        *(ingest.ingest(app_id, [b], None, _one) for app_id, b in requests),
        return_exceptions=True,
    )
    assert isinstance(answers[4], NotFound)
    good = [a for n, a in enumerate(answers) if n != 4]
    assert all(isinstance(a, dict) for a in good), answers
    events = await _events(settings, app["id"])
    assert sorted(e["id"] for e in events) == sorted(a["id"] for a in good)
    assert len({e["tx_id"] for e in events}) == len(good)  # each on its own
    assert all(e["deliveries"] == 1 for e in events)


async def test_each_request_in_a_group_keeps_its_own_idempotency_key(
    api: Client, settings: Settings, receiver: Receiver
) -> None:
    app = await subscribed_app(api, receiver)
    first = {"type": "render.done", "data": {"job_id": "job_1"}}
    other = {"type": "render.done", "data": {"job_id": "job_2"}}
    # A key taken by an earlier request: its answer comes back, nothing new is recorded.
    [earlier] = await _ingest_together(api, app["id"], [(first, "taken-before")])
    answers = await _ingest_together(
        api,
        app["id"],
        [
            (first, "k1"),
            (first, "k1"),  # the same request again, in the same group
            (other, "k1"),  # another request under the same key
            (first, "taken-before"),
            (other, None),
            (other, None),
        ],
    )
    assert isinstance(answers[0], dict) and answers[1]["id"] == answers[0]["id"]
    assert isinstance(answers[2], Conflict)
    assert answers[3]["id"] == earlier["id"]
    assert isinstance(answers[4], dict) and isinstance(answers[5], dict)
    assert answers[4]["id"] != answers[5]["id"]
    events = await _events(settings, app["id"])
    assert sorted(e["id"] for e in events) == sorted(
        [earlier["id"], answers[0]["id"], answers[4]["id"], answers[5]["id"]]
    )


async def test_concurrent_requests_through_http_are_each_answered_after_their_commit(
    api: Client, settings: Settings, receiver: Receiver
) -> None:
    app = await subscribed_app(api, receiver)
    connection = await asyncpg.connect(settings.database_url)
    try:
        posts = [
            api.post(
                f"/v1/apps/{app['id']}/events",
                json={"type": "render.step", "data": {"n": n}},
                headers=bearer(app["api_key"]),
            )
            for n in range(REQUESTS)
        ]
        for answered in asyncio.as_completed(posts):
            response = await answered
            assert response.status == 202, await response.text()
            event_id = (await response.json())["id"]
            # Committed by the time it is answered, with its delivery.
            assert (
                await connection.fetchval(
                    "SELECT count(*) FROM deliveries WHERE event_id = $1", event_id
                )
                == 1
            )
    finally:
        await connection.close()
    assert len(await _events(settings, app["id"])) == REQUESTS


async def test_a_key_expired_in_a_group_is_taken_again(
    api: Client, settings: Settings, receiver: Receiver
) -> None:
    app = await subscribed_app(api, receiver)
    body = {"type": "render.done", "data": {"n": 1}}
    [earlier] = await _ingest_together(api, app["id"], [(body, "k")])
    expired = "UPDATE idempotency_keys SET created_at = now() - interval '2 days' WHERE app_id = $1"
    connection = await asyncpg.connect(settings.database_url)
    await connection.execute(expired, app["id"])
    await connection.close()
    [again, other] = await _ingest_together(api, app["id"], [(body, "k"), (body, None)])
    assert again["id"] != earlier["id"]  # expired: a new event
    events = await _events(settings, app["id"])
    assert sorted(e["id"] for e in events) == sorted([earlier["id"], again["id"], other["id"]])


async def test_a_lock_held_on_one_app_holds_up_only_that_apps_requests(
    api: Client, settings: Settings, receiver: Receiver
) -> None:
    # As while an app is being deleted: its row is locked until that transaction ends. A group
    # that holds its request waits IMPATIENT_LOCK_WAIT_S at most, then each request goes alone: the
    # other app's are answered, and the locked app's waits for the lock, as it always did.
    locked, free = await subscribed_app(api, receiver), await subscribed_app(api, receiver)
    holder = await asyncpg.connect(settings.database_url)
    try:
        holding = holder.transaction()
        await holding.start()
        await holder.execute("SELECT 1 FROM apps WHERE id = $1 FOR UPDATE", locked["id"])
        ingest = api.server.app[INGEST]
        body = {"type": "render.step", "data": {"n": 1}}
        waiting = asyncio.create_task(ingest.ingest(locked["id"], [body], None, _one))
        others = [
            asyncio.create_task(ingest.ingest(free["id"], [body], None, _one)) for _ in range(5)
        ]
        done = await asyncio.wait_for(asyncio.gather(*others), 10)
        assert len({a["id"] for a in done}) == 5
        assert not waiting.done()
        await holding.rollback()
        assert (await asyncio.wait_for(waiting, 10))["id"]
    finally:
        await holder.close()
    assert len(await _events(settings, free["id"])) == 5
    assert len(await _events(settings, locked["id"])) == 1
