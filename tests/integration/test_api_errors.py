"""Bad requests get the JSON error shape, the right status, and leave nothing written."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.api_calls import ADMIN, create_app_with_key

Client = TestClient  # type: ignore[type-arg]


def assert_error(body: dict[str, Any], code: str) -> None:
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


async def test_missing_token_is_401(api: Client) -> None:
    response = await api.get("/v1/apps")
    assert response.status == 401
    assert_error(await response.json(), "unauthorized")


async def test_unknown_token_is_401(api: Client) -> None:
    response = await api.get("/v1/apps", headers={"Authorization": "Bearer hrk_nope"})
    assert response.status == 401
    assert_error(await response.json(), "unauthorized")


async def test_app_key_cannot_create_apps(api: Client) -> None:
    app = await create_app_with_key(api)
    response = await api.post(
        "/v1/apps", json={"name": "x"}, headers={"Authorization": f"Bearer {app['api_key']}"}
    )
    assert response.status == 403
    assert_error(await response.json(), "forbidden")


async def test_malformed_json_is_400(api: Client) -> None:
    response = await api.post(
        "/v1/apps", data=b"{nope", headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert response.status == 400
    assert_error(await response.json(), "bad_request")


async def test_non_json_body_is_415(api: Client) -> None:
    response = await api.post(
        "/v1/apps", data=b"name=x", headers={**ADMIN, "Content-Type": "text/plain"}
    )
    assert response.status == 415
    assert_error(await response.json(), "unsupported_media_type")


async def test_oversized_body_is_413(api: Client) -> None:
    body = b'{"name": "' + b"x" * (300 * 1024) + b'"}'
    response = await api.post(
        "/v1/apps", data=body, headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert response.status == 413
    assert_error(await response.json(), "payload_too_large")


async def test_unknown_route_is_404_json(api: Client) -> None:
    response = await api.get("/v1/nothing-here", headers=ADMIN)
    assert response.status == 404
    assert_error(await response.json(), "not_found")


async def test_invalid_app_body_is_422_and_creates_nothing(api: Client) -> None:
    response = await api.post("/v1/apps", json={"name": ""}, headers=ADMIN)
    assert response.status == 422
    assert_error(await response.json(), "invalid_payload")
    listed = await (await api.get("/v1/apps", headers=ADMIN)).json()
    assert listed == {"data": [], "next_cursor": None}


async def test_duplicate_uid_is_409_saying_the_uid_is_taken(api: Client) -> None:
    assert (
        await api.post("/v1/apps", json={"name": "a", "uid": "acme"}, headers=ADMIN)
    ).status == 201
    response = await api.post("/v1/apps", json={"name": "b", "uid": "acme"}, headers=ADMIN)
    assert response.status == 409
    body = await response.json()
    assert_error(body, "conflict")
    assert "uid already exists" in body["error"]["message"]


async def test_app_is_addressable_by_uid(api: Client) -> None:
    created = await (
        await api.post("/v1/apps", json={"name": "a", "uid": "acme"}, headers=ADMIN)
    ).json()
    response = await api.get("/v1/apps/acme", headers=ADMIN)
    assert (await response.json())["id"] == created["id"]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "http://user:pass@example.com/",
        "http://10.0.0.1/hook",
        "not a url",
    ],
)
async def test_unsafe_endpoint_url_is_422_and_registers_nothing(api: Client, url: str) -> None:
    app = await create_app_with_key(api)
    headers = {"Authorization": f"Bearer {app['api_key']}"}
    response = await api.post(f"/v1/apps/{app['id']}/endpoints", json={"url": url}, headers=headers)
    assert response.status == 422
    body = await response.json()
    assert body["error"]["code"] == "unsafe_url"
    listed = await (await api.get(f"/v1/apps/{app['id']}/endpoints", headers=headers)).json()
    assert listed["data"] == []


async def test_endpoint_secret_is_stored_encrypted(api: Client, db_url: str) -> None:
    import asyncpg

    app = await create_app_with_key(api)
    headers = {"Authorization": f"Bearer {app['api_key']}"}
    created = await (
        await api.post(
            f"/v1/apps/{app['id']}/endpoints", json={"url": "http://127.0.0.1:9/x"}, headers=headers
        )
    ).json()
    secret = created["secret"]
    connection = await asyncpg.connect(db_url)
    try:
        row = await connection.fetchrow("SELECT * FROM endpoints WHERE id = $1", created["id"])
    finally:
        await connection.close()
    assert secret.encode() not in row["secret_ciphertext"]
    assert secret.split("_", 1)[1].encode() not in row["secret_ciphertext"]
    fetched = await (
        await api.get(f"/v1/apps/{app['id']}/endpoints/{created['id']}/secret", headers=headers)
    ).json()
    assert fetched == {"secret": secret}


async def test_readyz_reports_dependencies(api: Client) -> None:
    response = await api.get("/readyz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "checks": {"postgres": "ok", "redis": "ok"}}


@pytest.mark.parametrize(
    "name",
    [
        "Host",
        "content-length",
        "Content-Language",
        "CONTENT-DISPOSITION",
        "Expect",
        "cookie",
        "Webhook-Signature",
        "TE",
    ],
)
async def test_endpoint_headers_cannot_replace_reserved_ones(api: Client, name: str) -> None:
    app = await create_app_with_key(api)
    response = await api.post(
        f"/v1/apps/{app['id']}/endpoints",
        json={"url": "http://127.0.0.1:9/x", "headers": {name: "x"}},
        headers={"Authorization": f"Bearer {app['api_key']}"},
    )
    assert response.status == 422
    assert (await response.json())["error"]["details"][0]["path"] == f"$.headers.{name}"
    listed = await api.get(
        f"/v1/apps/{app['id']}/endpoints", headers={"Authorization": f"Bearer {app['api_key']}"}
    )
    assert (await listed.json())["data"] == []


@pytest.mark.parametrize("name", ["Content-Language", "Expect", "Cookie"])
async def test_an_endpoint_update_cannot_add_a_reserved_header(api: Client, name: str) -> None:
    app = await create_app_with_key(api)
    auth = {"Authorization": f"Bearer {app['api_key']}"}
    created = await (
        await api.post(
            f"/v1/apps/{app['id']}/endpoints",
            json={"url": "http://127.0.0.1:9/x", "headers": {"X-Tenant": "acme"}},
            headers=auth,
        )
    ).json()
    response = await api.patch(
        f"/v1/apps/{app['id']}/endpoints/{created['id']}",
        json={"headers": {"X-Tenant": "acme", name: "x"}},
        headers=auth,
    )
    assert response.status == 422
    assert (await response.json())["error"]["details"][0]["path"] == f"$.headers.{name}"
    fetched = await api.get(f"/v1/apps/{app['id']}/endpoints/{created['id']}", headers=auth)
    assert (await fetched.json())["headers"] == {"X-Tenant": "acme"}


async def test_deeply_nested_json_is_400_and_stores_nothing(api: Client) -> None:
    app = await create_app_with_key(api)
    data: dict[str, object] = {}
    for _ in range(40):
        data = {"x": data}
    response = await api.post(
        f"/v1/apps/{app['id']}/events",
        json={"type": "image.ready", "data": data},
        headers={"Authorization": f"Bearer {app['api_key']}"},
    )
    assert response.status == 400
    assert "deeper" in (await response.json())["error"]["message"]
    listed = await api.get(
        f"/v1/apps/{app['id']}/events", headers={"Authorization": f"Bearer {app['api_key']}"}
    )
    assert (await listed.json())["data"] == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("event_types", [f"type.n{n}" for n in range(101)]),
        ("headers", {f"X-H{n}": "v" for n in range(21)}),
        ("headers", {"X-Long": "v" * 1025}),
        ("headers", {"X-Bad": "a\r\nInjected: yes"}),
        ("headers", {"X-Bad": "a\u0001b"}),
        ("headers", {"X-Bad": "caf\u00e9"}),
        ("description", "d" * 1025),
    ],
)
async def test_endpoint_limits_are_enforced(api: Client, field: str, value: object) -> None:
    app = await create_app_with_key(api)
    response = await api.post(
        f"/v1/apps/{app['id']}/endpoints",
        json={"url": "http://127.0.0.1:9/x", field: value},
        headers={"Authorization": f"Bearer {app['api_key']}"},
    )
    assert response.status == 422
    assert (await response.json())["error"]["details"][0]["path"].startswith(f"$.{field}")
