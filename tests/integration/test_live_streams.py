"""SSE streams and long-polls on the real API, Postgres and Redis: every event, in commit order,
nothing missed or repeated across reconnects, and no database work while clients only wait."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest
from aiohttp.test_utils import TestClient

from hookrelay.api.state import LIVE_FEED, STORAGE
from hookrelay.events import build_event
from hookrelay.live.cursors import open_position
from hookrelay.live.tokens import StreamGrant, issue_token
from hookrelay.models import LogFilter
from hookrelay.settings import Settings
from hookrelay.storage.events import READ_LOG_BYTES
from tests.integration.api_calls import (
    ADMIN,
    bearer,
    create_app_with_key,
    send_event,
    wait_until,
)
from tests.sse import SseReader

Client = TestClient  # type: ignore[type-arg]
App = dict[str, Any]


@asynccontextmanager
async def open_stream(
    api: Client, app: App, query: str = "", headers: dict[str, str] | None = None
) -> AsyncIterator[SseReader]:
    response = await api.get(
        f"/v1/apps/{app['id']}/events/stream{query}",
        headers=headers if headers is not None else bearer(app["api_key"]),
    )
    assert response.status == 200, await response.text()
    try:
        yield SseReader(response)
    finally:
        response.close()


@asynccontextmanager
async def open_stream_when_free(api: Client, app: App, within_s: float) -> AsyncIterator[SseReader]:
    """A stream of the app's, opened as soon as the app's cap on streams allows, within
    `within_s` (the server counts a closed stream until it has seen its client go)."""
    try:
        async with asyncio.timeout(within_s):
            while True:
                response = await api.get(
                    f"/v1/apps/{app['id']}/events/stream", headers=bearer(app["api_key"])
                )
                if response.status != 429:
                    break
                response.close()
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"the app's streams still took its cap after {within_s} s") from None
    assert response.status == 200, await response.text()
    try:
        yield SseReader(response)
    finally:
        response.close()


async def send_burst(api: Client, app: App, count: int, concurrency: int = 20) -> list[str]:
    """Send `count` events from `concurrency` concurrent senders, so commits interleave."""
    ids: list[str] = []
    numbers = iter(range(count))

    async def sender() -> None:
        for n in numbers:
            ids.append((await send_event(api, app, "image.ready", {"n": n}))["id"])

    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return ids


async def poll(api: Client, app: App, query: str) -> tuple[int, dict[str, Any]]:
    response = await api.get(f"/v1/apps/{app['id']}/events{query}", headers=bearer(app["api_key"]))
    return response.status, await response.json()


async def commit_order(settings: Settings, app_id: str) -> list[str]:
    connection = await asyncpg.connect(settings.database_url)
    try:
        rows = await connection.fetch(
            "SELECT id FROM events WHERE app_id = $1 ORDER BY tx_id, id", app_id
        )
    finally:
        await connection.close()
    return [row["id"] for row in rows]


@asynccontextmanager
async def event_in_open_transaction(
    settings: Settings, app: App
) -> AsyncIterator[tuple[str, asyncpg.transaction.Transaction]]:
    """An event written by a transaction left open (committed when the caller says): its id is
    drawn before events that commit earlier."""
    early = build_event(app["id"], "image.ready", {"n": "early"}, None, datetime.now(UTC))
    connection = await asyncpg.connect(settings.database_url)
    try:
        transaction = connection.transaction()
        await transaction.start()
        await connection.execute(
            "INSERT INTO events (id, app_id, type, body, created_at) VALUES ($1, $2, $3, $4, $5)",
            early.id,
            early.app_id,
            early.type,
            early.body,
            early.created_at,
        )
        yield early.id, transaction
    finally:
        await connection.close()


# SSE


async def test_a_stream_carries_each_event_as_id_type_and_webhook_body(api: Client) -> None:
    app = await create_app_with_key(api)
    async with open_stream(api, app) as stream:
        headers = stream.response.headers
        assert headers["Content-Type"].startswith("text/event-stream")
        assert headers["Cache-Control"] == "no-cache, no-transform"
        assert headers["X-Accel-Buffering"] == "no"
        hello = await stream.frame()
        assert hello.comments == ("connected",)
        sent = await send_event(api, app, "job.progress", {"job_id": "j1", "percent": 10})
        [frame] = await stream.events(1)
    assert frame.id == sent["id"]
    assert frame.event == "job.progress"
    body = orjson.loads(frame.data or "")
    assert body == {"type": "job.progress", "timestamp": sent["timestamp"], "data": sent["data"]}


async def test_200_concurrent_streams_each_get_every_event_of_a_burst_in_commit_order(
    api: Client, settings: Settings
) -> None:
    app = await create_app_with_key(api)
    url = api.make_url(f"/v1/apps/{app['id']}/events/stream")
    burst = 150
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        responses = await asyncio.gather(
            *(session.get(url, headers=bearer(app["api_key"])) for _ in range(200))
        )
        try:
            assert {r.status for r in responses} == {200}
            readers = [SseReader(r) for r in responses]
            for reader in readers:  # every stream is open and following before the burst
                assert (await reader.frame()).comments == ("connected",)
            sent = await send_burst(api, app, burst)
            received = await asyncio.gather(*(r.events(burst, timeout_s=60) for r in readers))
        finally:
            for response in responses:
                response.close()
    expected = await commit_order(settings, app["id"])
    assert sorted(expected) == sorted(sent)
    for frames in received:
        assert [f.id for f in frames] == expected


async def test_a_client_that_reconnects_with_last_event_id_misses_nothing_and_gets_nothing_twice(
    api: Client, settings: Settings
) -> None:
    app = await create_app_with_key(api)
    total = 300
    seen: list[str] = []
    async with open_stream(api, app) as stream:
        burst = asyncio.create_task(send_burst(api, app, total, concurrency=10))
        seen += [f.id for f in await stream.events(60) if f.id]
    # Disconnected mid-burst; the burst goes on while the client is away.
    await asyncio.sleep(0.2)
    async with open_stream(
        api, app, headers={**bearer(app["api_key"]), "Last-Event-ID": seen[-1]}
    ) as stream:
        await burst
        seen += [f.id for f in await stream.events(total - len(seen), timeout_s=30) if f.id]
        with pytest.raises(TimeoutError):  # and nothing more than the burst
            await stream.events(1, timeout_s=0.5)
    assert len(seen) == len(set(seen)) == total
    assert seen == await commit_order(settings, app["id"])


async def test_an_event_committed_late_with_an_earlier_id_is_not_skipped(
    api: Client, settings: Settings
) -> None:
    """Ids are drawn before commit. An event whose transaction is still open holds back the
    events committed after it began, so a reader never moves past it."""
    app = await create_app_with_key(api)
    async with (
        open_stream(api, app) as stream,
        event_in_open_transaction(settings, app) as (
            early_id,
            transaction,
        ),
    ):
        await stream.frame()
        later = await send_event(api, app, "image.ready", {"n": "later"})
        assert later["id"] > early_id
        with pytest.raises(TimeoutError):  # held back behind the open transaction
            await stream.events(1, timeout_s=0.5)
        await transaction.commit()
        frames = await stream.events(2, timeout_s=5)
    assert [f.id for f in frames] == [early_id, later["id"]]


async def test_types_and_job_id_narrow_a_stream(api: Client) -> None:
    app = await create_app_with_key(api)
    async with open_stream(api, app, "?types=job.completed,job.failed&job_id=j2") as stream:
        await stream.frame()
        await send_event(api, app, "job.completed", {"job_id": "j1", "output": 1})
        await send_event(api, app, "job.progress", {"job_id": "j2", "percent": 5})
        wanted = await send_event(api, app, "job.completed", {"job_id": "j2", "output": 2})
        [frame] = await stream.events(1)
    assert frame.id == wanted["id"]


async def test_a_job_stream_starts_with_the_jobs_history(api: Client) -> None:
    app = await create_app_with_key(api)
    queued = await send_event(api, app, "job.queued", {"job_id": "j7"})
    await send_event(api, app, "image.ready", {"n": 1})
    started = await send_event(api, app, "job.started", {"job_id": "j7"})
    async with open_stream(api, app, "?job_id=j7") as stream:
        history = await stream.events(2)
        done = await send_event(api, app, "job.completed", {"job_id": "j7", "output": "ok"})
        [live] = await stream.events(1)
    assert [f.id for f in history] == [queued["id"], started["id"]]
    assert live.id == done["id"]


@pytest.mark.settings(stream_heartbeat_s=0.2)
async def test_an_idle_stream_sends_heartbeat_comments(api: Client) -> None:
    app = await create_app_with_key(api)
    async with open_stream(api, app) as stream:
        await stream.frame()
        beat = await stream.frame(timeout_s=2)
    assert beat.comments == ("keep-alive",)
    assert beat.id is None


@pytest.mark.settings(max_streams_per_app=2)
async def test_streams_per_app_are_capped(api: Client) -> None:
    app = await create_app_with_key(api)
    other = await create_app_with_key(api, "other")
    async with open_stream(api, app), open_stream(api, app):
        response = await api.get(
            f"/v1/apps/{app['id']}/events/stream", headers=bearer(app["api_key"])
        )
        assert response.status == 429
        assert (await response.json())["error"]["code"] == "throttled"
        assert response.headers["Retry-After"] == "5"
        async with open_stream(api, other):  # another app has its own allowance
            pass
    # A closed stream gives its place back at once, not when its next heartbeat would have
    # found the client gone.
    async with open_stream_when_free(api, app, within_s=1.0):
        pass


async def test_a_long_poll_whose_client_has_gone_stops_waiting_at_once(api: Client) -> None:
    app = await create_app_with_key(api)
    tails = api.server.app[LIVE_FEED]._tails

    async def readers_are(count: int) -> bool:
        return (tails[app["id"]].readers if app["id"] in tails else 0) == count

    polling = asyncio.create_task(poll(api, app, "?wait=30"))
    await wait_until(lambda: readers_are(1), "the long-poll waiting", timeout_s=5)
    polling.cancel()  # the client gives up: its connection closes
    with suppress(asyncio.CancelledError):
        await polling
    # At once, not after the 30 s it asked to wait.
    await wait_until(lambda: readers_are(0), "the long-poll gone", timeout_s=1)


async def test_a_bad_last_event_id_or_type_list_is_a_400(api: Client) -> None:
    app = await create_app_with_key(api)
    for query, headers in (
        ("", {"Last-Event-ID": "not-an-id"}),
        ("?last_event_id=evt_zz", {}),
        ("?types=Not A Type", {}),
    ):
        response = await api.get(
            f"/v1/apps/{app['id']}/events/stream{query}",
            headers={**bearer(app["api_key"]), **headers},
        )
        assert response.status == 400, query
        assert (await response.json())["error"]["code"] == "bad_request"


async def test_closing_the_feed_ends_open_streams(api: Client) -> None:
    app = await create_app_with_key(api)
    async with open_stream(api, app) as stream:
        await stream.frame()
        await api.app[LIVE_FEED].close()
        with pytest.raises(EOFError):
            await stream.frame(timeout_s=5)


# Stream tokens


async def issue_token_for(api: Client, app: App, body: dict[str, Any] | None = None) -> str:
    response = await api.post(
        f"/v1/apps/{app['id']}/stream-tokens", json=body or {}, headers=bearer(app["api_key"])
    )
    assert response.status == 201, await response.text()
    issued: dict[str, Any] = await response.json()
    assert issued["app_id"] == app["id"]
    assert issued["expires_at"] > time.time()
    token: str = issued["token"]
    return token


async def test_a_stream_token_opens_its_apps_stream_without_a_header(api: Client) -> None:
    app = await create_app_with_key(api)
    token = await issue_token_for(api, app)
    async with open_stream(api, app, f"?token={token}", headers={}) as stream:
        await stream.frame()
        sent = await send_event(api, app, "image.ready", {"n": 1})
        [frame] = await stream.events(1)
    assert frame.id == sent["id"]


async def test_a_stream_token_opens_nothing_else(api: Client) -> None:
    app = await create_app_with_key(api)
    other = await create_app_with_key(api, "other")
    token = await issue_token_for(api, app)
    response = await api.get(f"/v1/apps/{other['id']}/events/stream?token={token}")
    assert response.status == 404
    for path in ("/events", "/jobs/j1", "/endpoints"):
        response = await api.get(f"/v1/apps/{app['id']}{path}?token={token}")
        assert response.status == 401, path
    response = await api.post(f"/v1/apps/{app['id']}/stream-tokens?token={token}", json={})
    assert response.status == 401


async def test_an_expired_or_forged_stream_token_is_refused(
    api: Client, settings: Settings
) -> None:
    app = await create_app_with_key(api)
    assert settings.secret_key is not None
    expired = issue_token(settings.secret_key, StreamGrant(app["id"], None, int(time.time()) - 1))
    forged = issue_token(b"k" * 32, StreamGrant(app["id"], None, int(time.time()) + 60))
    for token in (expired, forged, "hrst_garbage", await issue_token_for(api, app) + "x"):
        response = await api.get(f"/v1/apps/{app['id']}/events/stream?token={token}")
        assert response.status == 401, token
        assert (await response.json())["error"]["code"] == "unauthorized"


async def test_a_job_token_streams_only_that_job(api: Client) -> None:
    app = await create_app_with_key(api)
    token = await issue_token_for(api, app, {"job_id": "j1", "expires_in": 60})
    response = await api.get(f"/v1/apps/{app['id']}/events/stream?token={token}&job_id=j2")
    assert response.status == 404
    async with open_stream(api, app, f"?token={token}", headers={}) as stream:
        await stream.frame()
        await send_event(api, app, "job.queued", {"job_id": "j2"})
        mine = await send_event(api, app, "job.queued", {"job_id": "j1"})
        [frame] = await stream.events(1)
    assert frame.id == mine["id"]


async def test_stream_token_requests_are_validated(api: Client) -> None:
    app = await create_app_with_key(api)
    response = await api.post(
        f"/v1/apps/{app['id']}/stream-tokens",
        json={"expires_in": 7200},
        headers=bearer(app["api_key"]),
    )
    assert response.status == 422
    assert (await response.json())["error"]["details"][0]["path"] == "$.expires_in"
    response = await api.post(f"/v1/apps/{app['id']}/stream-tokens", headers=ADMIN)
    assert response.status == 201  # no body: every field has a default


# Long-poll


async def test_a_long_poll_answers_at_once_when_newer_events_exist(api: Client) -> None:
    app = await create_app_with_key(api)
    first = await send_event(api, app, "image.ready", {"n": 1})
    second = await send_event(api, app, "image.ready", {"n": 2})
    third = await send_event(api, app, "image.ready", {"n": 3})
    started = time.monotonic()
    status, page = await poll(api, app, f"?after={first['id']}&wait=30")
    assert time.monotonic() - started < 1
    assert status == 200
    assert [e["id"] for e in page["data"]] == [second["id"], third["id"]]
    status, page = await poll(api, app, f"?after={page['next_cursor']}&wait=0")
    assert (status, page["data"]) == (200, [])


@pytest.mark.timed
async def test_a_long_poll_returns_within_100ms_of_the_event_it_waited_for(api: Client) -> None:
    app = await create_app_with_key(api)
    _, page = await poll(api, app, "?wait=0")  # a cursor for "now"
    for _ in range(5):
        waiting = asyncio.create_task(poll(api, app, f"?after={page['next_cursor']}&wait=30"))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        sent = await send_event(api, app, "image.ready", {"n": 1})
        accepted = time.monotonic()
        status, page = await waiting
        latency = time.monotonic() - accepted
        assert status == 200
        assert [e["id"] for e in page["data"]] == [sent["id"]]
        assert latency < 0.1, f"answered {latency * 1000:.0f} ms after the event was accepted"


async def test_a_long_poll_that_times_out_returns_empty_with_a_cursor_to_go_on(
    api: Client,
) -> None:
    app = await create_app_with_key(api)
    last = await send_event(api, app, "image.ready", {"n": 1})
    started = time.monotonic()
    status, page = await poll(api, app, f"?after={last['id']}&wait=0.5")
    waited = time.monotonic() - started
    assert status == 200
    assert page["data"] == []
    assert 0.45 <= waited < 2
    after = await send_event(api, app, "image.ready", {"n": 2})
    _, page = await poll(api, app, f"?after={page['next_cursor']}&wait=5")
    assert [e["id"] for e in page["data"]] == [after["id"]]


async def test_polling_with_the_cursor_during_a_burst_misses_nothing(
    api: Client, settings: Settings
) -> None:
    app = await create_app_with_key(api)
    _, page = await poll(api, app, "?wait=0")
    burst = asyncio.create_task(send_burst(api, app, 200, concurrency=10))
    seen: list[str] = []
    while len(seen) < 200:
        status, page = await poll(api, app, f"?after={page['next_cursor']}&wait=5&limit=7")
        assert status == 200
        assert page["data"], "a poll timed out during the burst"
        seen += [e["id"] for e in page["data"]]
    await burst
    assert seen == await commit_order(settings, app["id"])


async def transaction_ids(settings: Settings, app_id: str) -> list[int]:
    connection = await asyncpg.connect(settings.database_url)
    try:
        rows = await connection.fetch(
            "SELECT tx_id::text::bigint AS tx FROM events WHERE app_id = $1", app_id
        )
    finally:
        await connection.close()
    return [row["tx"] for row in rows]


async def test_a_long_poll_cursor_does_not_show_the_servers_transaction_ids(
    api: Client, settings: Settings
) -> None:
    app = await create_app_with_key(api)
    _, page = await poll(api, app, "?wait=0")
    cursors = [page["next_cursor"]]
    for n in range(3):
        await send_event(api, app, "image.ready", {"n": n})
        _, page = await poll(api, app, f"?after={page['next_cursor']}&wait=5")
        cursors.append(page["next_cursor"])
    numbers = await transaction_ids(settings, app["id"])
    for cursor in cursors:
        decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        for number in numbers:
            for spelling in (str(number).encode(), number.to_bytes(8, "big")):
                assert spelling not in decoded and spelling not in cursor.encode()


async def test_a_long_poll_cursor_opens_only_its_own_app_and_only_as_given(api: Client) -> None:
    app = await create_app_with_key(api)
    other = await create_app_with_key(api, "other")
    await send_event(api, app, "image.ready", {"n": 1})
    _, page = await poll(api, app, "?job_id=none&wait=0")
    cursor = page["next_cursor"]
    status, body = await poll(api, other, f"?after={cursor}&wait=0")
    assert status == 400 and body["error"]["code"] == "bad_request"
    tampered = cursor[:10] + ("A" if cursor[10] != "A" else "B") + cursor[11:]
    status, body = await poll(api, app, f"?after={tampered}&wait=0")
    assert status == 400 and body["error"]["code"] == "bad_request"
    assert "event id" in body["error"]["message"]
    status, _ = await poll(api, app, f"?after={cursor}&wait=0")
    assert status == 200


async def test_a_long_poll_cursor_from_before_cursors_were_sealed_still_resumes(
    api: Client, settings: Settings
) -> None:
    app = await create_app_with_key(api)
    first = await send_event(api, app, "image.ready", {"n": 1})
    [transaction] = await transaction_ids(settings, app["id"])
    legacy = base64.urlsafe_b64encode(f"{transaction}:{first['id']}".encode()).decode()
    second = await send_event(api, app, "image.ready", {"n": 2})
    status, page = await poll(api, app, f"?after={legacy.rstrip('=')}&wait=5")
    assert status == 200
    assert [e["id"] for e in page["data"]] == [second["id"]]
    assert open_position(settings.all_secret_keys(), app["id"], page["next_cursor"]) is not None


async def test_an_unsealed_cursor_tells_nothing_of_the_transaction_counter(
    api: Client, settings: Settings
) -> None:
    """A cursor from before cursors were sealed resumes after its event, whatever number it
    carries, so no number a client writes there can be tested against the server's counter;
    one that names no event is refused."""
    app = await create_app_with_key(api)
    first = await send_event(api, app, "image.ready", {"n": 1})
    second = await send_event(api, app, "image.ready", {"n": 2})
    transaction = min(await transaction_ids(settings, app["id"]))  # the first event's

    def unsealed(number: int, event_id: str = "") -> str:
        return base64.urlsafe_b64encode(f"{number}:{event_id}".encode()).decode().rstrip("=")

    for number in (0, transaction - 1, transaction, transaction + 1, 2**63):
        status, page = await poll(api, app, f"?after={unsealed(number, first['id'])}")
        assert status == 200, number
        assert [e["id"] for e in page["data"]] == [second["id"]], number
    for number in (0, transaction, 2**63):
        status, body = await poll(api, app, f"?after={unsealed(number)}")
        assert status == 400, number
        assert "last event" in body["error"]["message"]


async def test_a_long_poll_narrows_by_type_and_job(api: Client) -> None:
    app = await create_app_with_key(api)
    await send_event(api, app, "job.queued", {"job_id": "a"})
    wanted = await send_event(api, app, "job.queued", {"job_id": "b"})
    await send_event(api, app, "job.started", {"job_id": "b"})
    status, page = await poll(api, app, "?job_id=b&type=job.queued&wait=1")
    assert status == 200
    assert [e["id"] for e in page["data"]] == [wanted["id"]]


class CountingPool:
    """The storage's real pool, counting the connections taken from it (every query takes one)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.acquired = 0

    def acquire(self, *args: Any, **kwargs: Any) -> Any:
        self.acquired += 1
        return self.pool.acquire(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)


async def test_waiting_long_polls_cost_no_database_work(api: Client) -> None:
    """1,000 clients wait on one app; while nothing happens the API asks Postgres nothing."""
    app = await create_app_with_key(api)
    _, page = await poll(api, app, "?wait=0")
    url = api.make_url(f"/v1/apps/{app['id']}/events?after={page['next_cursor']}&wait=20")
    db = api.app[STORAGE].db
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        waiting = [
            asyncio.create_task(session.get(url, headers=bearer(app["api_key"])))
            for _ in range(1000)
        ]
        try:
            await asyncio.sleep(3)  # all are in and waiting (each looked once at the log)
            counting = db.pool = CountingPool(db.pool)  # type: ignore[assignment]
            await asyncio.sleep(2)
            idle_queries = counting.acquired
            sent = await send_event(api, app, "image.ready", {"n": 1})
            responses = await asyncio.gather(*waiting)
            bodies = [await r.json() for r in responses]
        finally:
            for task in waiting:
                task.cancel()
            db.pool = counting.pool
    assert idle_queries == 0
    assert all([e["id"] for e in b["data"]] == [sent["id"]] for b in bodies)
    # One event woke 1,000 clients: the tail read it once (plus the ingest's own statement).
    assert counting.acquired - idle_queries <= 5


async def test_bad_long_poll_parameters_are_a_400(api: Client) -> None:
    app = await create_app_with_key(api)
    for query in (
        "?wait=61",
        "?wait=-1",
        "?wait=soon",
        "?after=not-a-cursor",
        "?after=evt_1&wait=1",
        "?wait=1&since=2026-01-01T00:00:00Z",
        "?wait=1&cursor=abc",
    ):
        status, body = await poll(api, app, query)
        assert status == 400, query
        assert body["error"]["code"] == "bad_request"


async def test_a_long_poll_after_an_id_from_an_ingest_answer_never_skips_an_earlier_commit(
    api: Client, settings: Settings
) -> None:
    """A client may take `after` from the answer to its own POST. If an older transaction is
    still open then, its event must still come (B may come again: never a gap)."""
    app = await create_app_with_key(api)
    async with event_in_open_transaction(settings, app) as (early_id, transaction):
        later = await send_event(api, app, "image.ready", {"n": "later"})
        status, page = await poll(api, app, f"?after={later['id']}&wait=0")
        assert (status, page["data"]) == (200, [])
        await transaction.commit()
    _, page = await poll(api, app, f"?after={page['next_cursor']}&wait=5")
    assert early_id in [e["id"] for e in page["data"]]


async def test_after_an_id_the_app_never_had_is_a_404_and_a_pruned_one_starts_over(
    api: Client, settings: Settings
) -> None:
    app = await create_app_with_key(api)
    other = await create_app_with_key(api, "other")
    first = await send_event(api, app, "image.ready", {"n": 1})
    second = await send_event(api, app, "image.ready", {"n": 2})
    theirs = await send_event(api, other, "image.ready", {"n": 3})
    for unknown in (theirs["id"], "evt_" + "f" * 32):
        status, body = await poll(api, app, f"?after={unknown}&wait=0")
        assert (status, body["error"]["code"]) == (404, "not_found"), unknown
    connection = await asyncpg.connect(settings.database_url)
    try:
        await connection.execute("DELETE FROM events WHERE id = $1", first["id"])  # pruned
    finally:
        await connection.close()
    status, page = await poll(api, app, f"?after={first['id']}&wait=0")
    assert status == 200
    assert [e["id"] for e in page["data"]] == [second["id"]]


async def test_a_head_request_never_opens_a_stream(api: Client) -> None:
    app = await create_app_with_key(api)
    response = await api.head(f"/v1/apps/{app['id']}/events/stream", headers=bearer(app["api_key"]))
    assert response.status in (404, 405)
    assert response.content_type == "application/json"


async def test_pages_of_the_log_are_bounded_in_bytes_and_skip_nothing(api: Client) -> None:
    app = await create_app_with_key(api)
    sent = [
        (await send_event(api, app, "image.ready", {"n": n, "pad": "x" * 100_000}))["id"]
        for n in range(25)
    ]
    events = api.app[STORAGE].events
    position, pages, read = (0, ""), [], []
    while len(read) < len(sent):
        page = await events.read_log(app["id"], position, LogFilter(), 100)
        assert page.events
        assert sum(len(e.body) for e in page.events[:-1]) < READ_LOG_BYTES
        pages.append(len(page.events))
        read += [e.id for e in page.events]
        position = page.position
    assert len(pages) == 3  # about 1 MiB each
    assert read == sent  # sent one after another, so commit order is send order


async def test_a_stream_token_stops_opening_streams_when_its_app_is_deleted(api: Client) -> None:
    app = await create_app_with_key(api)
    token = await issue_token_for(api, app)
    response = await api.delete(f"/v1/apps/{app['id']}", headers=ADMIN)
    assert response.status == 204
    response = await api.get(f"/v1/apps/{app['id']}/events/stream?token={token}")
    # The key that issued it went with the app: the token is no longer valid.
    assert response.status == 401


async def test_one_notice_brings_every_event_it_stands_for_however_many_pages(
    api: Client, settings: Settings
) -> None:
    """Events committed together beyond one page of bytes (here 3 MB in one transaction, one
    notice) all reach a waiting stream at once, not one page per notice."""
    app = await create_app_with_key(api)
    now = datetime.now(UTC)
    events = [
        build_event(app["id"], "image.ready", {"n": n, "pad": "x" * 100_000}, None, now)
        for n in range(30)
    ]
    insert = "INSERT INTO events (id, app_id, type, body, created_at) VALUES ($1, $2, $3, $4, $5)"
    async with open_stream(api, app) as stream:
        assert (await stream.frame()).comments == ("connected",)
        connection = await asyncpg.connect(settings.database_url)
        try:
            await connection.executemany(
                insert, [(e.id, e.app_id, e.type, e.body, e.created_at) for e in events]
            )
        finally:
            await connection.close()
        api.app[LIVE_FEED].notice(app["id"])
        received = await stream.events(len(events), timeout_s=5)
    # One transaction: its events are in id order.
    assert [frame.id for frame in received] == sorted(e.id for e in events)
