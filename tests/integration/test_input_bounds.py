"""Every input is bounded: a job id follows one rule wherever it comes from, and a value the
database could not index or store is refused before it reaches the database."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.api_calls import ADMIN, bearer, create_app_with_key, send_event

Client = TestClient  # type: ignore[type-arg]

# Longer than a btree index entry may be (about 2,700 bytes), and random so that Postgres
# cannot compress it below that: the original 500.
HUGE_JOB_ID = secrets.token_urlsafe(2250)
BAD_JOB_IDS = [HUGE_JOB_ID, "j" * 201, "", "has space", "new\nline", "caf\u00e9", "nul\u0000"]


async def _event_count(api: Client, app: dict[str, Any]) -> int:
    listed = await api.get(f"/v1/apps/{app['id']}/events", headers=bearer(app["api_key"]))
    assert listed.status == 200
    return len((await listed.json())["data"])


async def test_custom_event_with_a_3000_character_data_job_id_is_422_and_stores_nothing(
    api: Client,
) -> None:
    app = await create_app_with_key(api)
    response = await api.post(
        f"/v1/apps/{app['id']}/events",
        json={"type": "image.ready", "data": {"job_id": HUGE_JOB_ID}},
        headers=bearer(app["api_key"]),
    )
    assert response.status == 422, (await response.text())[:300]
    body = await response.json()
    assert body["error"]["code"] == "invalid_payload"
    assert [d["path"] for d in body["error"]["details"]] == ["$.data.job_id"]
    assert await _event_count(api, app) == 0


@pytest.mark.parametrize("job_id", [*BAD_JOB_IDS[1:], 42, None, ["j"]])
@pytest.mark.parametrize("event_type", ["image.ready", "job.completed"])
async def test_data_job_id_of_any_type_follows_the_job_id_rule(
    api: Client, event_type: str, job_id: object
) -> None:
    app = await create_app_with_key(api)
    response = await api.post(
        f"/v1/apps/{app['id']}/events",
        json={"type": event_type, "data": {"job_id": job_id, "output": 1}},
        headers=bearer(app["api_key"]),
    )
    assert response.status == 422, (await response.text())[:300]
    paths = [d["path"] for d in (await response.json())["error"]["details"]]
    assert "$.data.job_id" in paths
    assert await _event_count(api, app) == 0


async def test_a_bad_data_job_id_in_a_batch_names_its_event_and_stores_nothing(
    api: Client,
) -> None:
    app = await create_app_with_key(api)
    response = await api.post(
        f"/v1/apps/{app['id']}/events/batch",
        json={
            "events": [
                {"type": "image.ready", "data": {"job_id": "fine"}},
                {"type": "image.ready", "data": {"job_id": HUGE_JOB_ID}},
            ]
        },
        headers=bearer(app["api_key"]),
    )
    assert response.status == 422, (await response.text())[:300]
    paths = [d["path"] for d in (await response.json())["error"]["details"]]
    assert paths == ["$.events[1].data.job_id"]
    assert await _event_count(api, app) == 0


async def test_a_valid_custom_data_job_id_is_kept_and_followed(api: Client) -> None:
    app = await create_app_with_key(api)
    await send_event(api, app, "image.ready", {"job_id": "j" * 200})
    job = await api.get(f"/v1/apps/{app['id']}/jobs/{'j' * 200}", headers=bearer(app["api_key"]))
    assert job.status == 200


@pytest.mark.parametrize("job_id", BAD_JOB_IDS)
@pytest.mark.parametrize(
    "route",
    [
        "events?job_id={}",
        "events?wait=0&job_id={}",
        "events/stream?job_id={}",
        "deliveries?job_id={}",
    ],
)
async def test_a_bad_job_id_query_parameter_is_400(api: Client, route: str, job_id: str) -> None:
    app = await create_app_with_key(api)
    response = await api.get(
        f"/v1/apps/{app['id']}/" + route.format(_quote(job_id)), headers=bearer(app["api_key"])
    )
    assert response.status == 400, (await response.text())[:300]
    body = await response.json()
    assert body["error"]["code"] == "bad_request"
    assert "job_id" in body["error"]["message"]


@pytest.mark.parametrize("job_id", [HUGE_JOB_ID, "j" * 201, "caf\u00e9", "nul\u0000"])
async def test_a_bad_job_id_in_the_jobs_path_is_400(api: Client, job_id: str) -> None:
    app = await create_app_with_key(api)
    response = await api.get(
        f"/v1/apps/{app['id']}/jobs/{_quote(job_id)}", headers=bearer(app["api_key"])
    )
    assert response.status == 400, (await response.text())[:300]
    assert "job_id" in (await response.json())["error"]["message"]


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


async def test_event_data_with_u0000_is_accepted_with_an_idempotency_key_and_answered_again(
    api: Client,
) -> None:
    app = await create_app_with_key(api)
    headers = {**bearer(app["api_key"]), "Idempotency-Key": "k1"}
    body = {"type": "image.ready", "data": {"caption": "a\u0000b"}}
    first = await api.post(f"/v1/apps/{app['id']}/events", json=body, headers=headers)
    assert first.status == 202, (await first.text())[:300]
    again = await api.post(f"/v1/apps/{app['id']}/events", json=body, headers=headers)
    assert again.status == 202
    assert await again.json() == await first.json()
    assert (await first.json())["data"] == {"caption": "a\u0000b"}
    assert await _event_count(api, app) == 1


@pytest.mark.parametrize(
    ("route", "field"),
    [("", "name"), ("/keys", "name"), ("/endpoints", "description")],
)
async def test_a_nul_in_a_stored_text_is_422_with_its_path(
    api: Client, route: str, field: str
) -> None:
    app = await create_app_with_key(api)
    body: dict[str, Any] = {field: "a\u0000b"}
    if route == "/endpoints":
        body["url"] = "http://127.0.0.1:9/hook"
    url = "/v1/apps" if route == "" else f"/v1/apps/{app['id']}{route}"
    response = await api.post(url, json=body, headers=bearer(app["api_key"]) if route else ADMIN)
    assert response.status == 422, (await response.text())[:300]
    assert [d["path"] for d in (await response.json())["error"]["details"]] == [f"$.{field}"]


@pytest.mark.parametrize("bad", ["nul%00", "caf%C3%A9", "x" * 65, "%0A"])
@pytest.mark.parametrize(
    "route",
    [
        "/v1/apps/{}",
        "/v1/apps/{app}/endpoints/{}",
        "/v1/apps/{app}/events/{}",
        "/v1/apps/{app}/deliveries/{}",
        "/v1/apps/{app}/keys/{}",
        "/v1/apps/{}/events",
    ],
)
@pytest.mark.parametrize("caller", ["admin", "app key"])
async def test_a_path_parameter_that_is_no_id_is_404_before_any_query(
    api: Client, route: str, bad: str, caller: str
) -> None:
    app = await create_app_with_key(api)
    method = "DELETE" if route.endswith("/keys/{}") else "GET"
    headers = ADMIN if caller == "admin" else bearer(app["api_key"])
    response = await api.request(
        method, route.replace("{app}", app["id"]).format(bad), headers=headers
    )
    assert response.status == 404, (await response.text())[:300]
    assert (await response.json())["error"]["code"] == "not_found"


@pytest.mark.parametrize("uid", [".", "..", "..."])
async def test_a_uid_of_only_dots_is_refused(api: Client, uid: str) -> None:
    """Clients collapse such a path segment, so the app could never be reached by it."""
    response = await api.post("/v1/apps", json={"name": "dots", "uid": uid}, headers=ADMIN)
    assert response.status == 422, (await response.text())[:300]
    assert [d["path"] for d in (await response.json())["error"]["details"]] == ["$.uid"]
    listed = await (await api.get("/v1/apps?limit=250", headers=ADMIN)).json()
    assert uid not in [app["uid"] for app in listed["data"]]
