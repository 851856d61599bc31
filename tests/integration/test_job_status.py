"""GET .../jobs/{job_id}: a job's state folded from its events, through the real API."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.integration.api_calls import bearer, create_app_with_key, send_event

Client = TestClient  # type: ignore[type-arg]


async def job_status(api: Client, app: dict[str, Any], job_id: str) -> tuple[int, dict[str, Any]]:
    response = await api.get(f"/v1/apps/{app['id']}/jobs/{job_id}", headers=bearer(app["api_key"]))
    return response.status, await response.json()


async def test_a_job_is_followed_from_queued_to_completed(api: Client) -> None:
    app = await create_app_with_key(api)
    states = []
    steps: list[tuple[str, dict[str, Any]]] = [
        ("job.queued", {}),
        ("job.started", {}),
        ("job.progress", {"percent": 40, "message": "denoising"}),
        ("job.action_required", {"action": {"kind": "approval", "message": "Use this seed?"}}),
        ("job.progress", {"percent": 80, "message": "upscaling"}),
        ("job.completed", {"output": {"image": "a.png"}}),
    ]
    sent = []
    for event_type, data in steps:
        sent.append(await send_event(api, app, event_type, {"job_id": "img-42", **data}))
        status, job = await job_status(api, app, "img-42")
        assert status == 200
        states.append((job["state"], job["progress"]["percent"], job["action"] is not None))
    assert states == [
        ("queued", None, False),
        ("running", None, False),
        ("running", 40, False),
        ("action_required", 40, True),
        ("running", 80, False),
        ("completed", 100, False),
    ]
    assert job["output"] == {"image": "a.png"}
    assert job["event_count"] == 6
    assert [e["id"] for e in job["events"]] == [e["id"] for e in sent]
    assert job["last_event_id"] == sent[-1]["id"]
    assert job["created_at"] == sent[0]["created_at"]
    assert job["finished_at"] == sent[-1]["created_at"]


async def test_events_arriving_after_the_end_do_not_reopen_the_job(api: Client) -> None:
    app = await create_app_with_key(api)
    await send_event(api, app, "job.started", {"job_id": "j1"})
    await send_event(
        api, app, "job.failed", {"job_id": "j1", "error": {"code": "oom", "message": "!"}}
    )
    await send_event(api, app, "job.progress", {"job_id": "j1", "percent": 90})
    await send_event(api, app, "job.started", {"job_id": "j1"})
    status, job = await job_status(api, app, "j1")
    assert status == 200
    assert job["state"] == "failed"
    assert job["error"] == {"code": "oom", "message": "!"}
    assert job["event_count"] == 4


async def test_a_job_with_no_events_is_a_404_and_jobs_are_per_app(api: Client) -> None:
    app = await create_app_with_key(api)
    other = await create_app_with_key(api, "other")
    await send_event(api, other, "job.queued", {"job_id": "theirs"})
    status, body = await job_status(api, app, "theirs")
    assert status == 404
    assert body["error"]["code"] == "not_found"
