"""What `make fuzz` (schemathesis against the live API) found: answers that did not match
/openapi.json. Each test here failed before its fix."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.api_calls import ADMIN, bearer, create_app_with_key

Client = TestClient  # type: ignore[type-arg]


@pytest.mark.parametrize(
    ("method", "route", "allowed"),
    [
        ("GET", "events/batch", "POST"),
        ("OPTIONS", "events/batch", "POST"),
        ("GET", "deliveries/replay", "POST"),
        ("PUT", "deliveries/replay", "POST"),
        ("HEAD", "events/stream", "GET"),
        ("POST", "events/stream", "GET"),
    ],
)
async def test_a_method_a_route_does_not_take_is_405_with_its_own_allow_header(
    api: Client, method: str, route: str, allowed: str
) -> None:
    app = await create_app_with_key(api)
    response = await api.request(method, f"/v1/apps/{app['id']}/{route}", headers=ADMIN)
    assert response.status == 405
    assert set(response.headers["Allow"].split(",")) == {allowed}


async def test_an_event_and_a_delivery_are_still_reached_by_id(api: Client) -> None:
    app = await create_app_with_key(api)
    for route in ("events/evt_" + "0" * 32, "deliveries/dlv_" + "0" * 32):
        response = await api.get(f"/v1/apps/{app['id']}/{route}", headers=ADMIN)
        assert response.status == 404
        assert (await response.json())["error"]["message"].startswith("no such")


@pytest.mark.parametrize("name", ["since", "until"])
@pytest.mark.parametrize("route", ["events", "deliveries", "attempts"])
async def test_an_empty_time_in_the_query_is_400(api: Client, route: str, name: str) -> None:
    app = await create_app_with_key(api)
    response = await api.get(f"/v1/apps/{app['id']}/{route}?{name}=", headers=ADMIN)
    assert response.status == 400
    assert name in (await response.json())["error"]["message"]


@pytest.mark.parametrize("name", ["since", "until"])
async def test_an_empty_time_in_a_replay_body_is_422_with_its_path(api: Client, name: str) -> None:
    app = await create_app_with_key(api)
    response = await api.post(
        f"/v1/apps/{app['id']}/deliveries/replay",
        json={name: "", "dry_run": True},
        headers=bearer(app["api_key"]),
    )
    assert response.status == 422
    assert [d["path"] for d in (await response.json())["error"]["details"]] == [f"$.{name}"]


@pytest.mark.parametrize("route", ["deliveries/replay", "endpoints/{endpoint}/recover"])
@pytest.mark.parametrize("since", ["999999999h", "99999999999999999999d", "800000d"])
async def test_a_window_reaching_back_before_any_time_is_422_not_a_500(
    api: Client, route: str, since: str
) -> None:
    app = await create_app_with_key(api)
    endpoint = await api.post(
        f"/v1/apps/{app['id']}/endpoints",
        json={"url": "http://127.0.0.1:9/hook"},
        headers=bearer(app["api_key"]),
    )
    path = route.format(endpoint=(await endpoint.json())["id"])
    response = await api.post(
        f"/v1/apps/{app['id']}/{path}",
        json={"since": since, "dry_run": True},
        headers=bearer(app["api_key"]),
    )
    assert response.status == 422
    error = (await response.json())["error"]
    assert [d["path"] for d in error["details"]] == ["$.since"]
    assert "C int" not in str(error)


@pytest.mark.parametrize(
    "query",
    [
        "events?type=",
        "events?type=Not.A.Type",
        "events?wait=0&type=" + "a." * 100,
        "deliveries?event_type=x",
        "deliveries?endpoint_id=ep_1",
        "deliveries?event_id=%00",
        "attempts?delivery_id=" + "d" * 5000,
    ],
)
async def test_a_filter_that_is_not_what_it_filters_on_is_400(api: Client, query: str) -> None:
    app = await create_app_with_key(api)
    response = await api.get(f"/v1/apps/{app['id']}/{query}", headers=ADMIN)
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "bad_request"


@pytest.mark.parametrize("limit", ["%C2%B3", "%D9%A3", "%EF%BC%95"])  # ³, Arabic 3, fullwidth 5
@pytest.mark.parametrize("route", ["apps/{app}/endpoints", "apps/{app}/events", "apps"])
async def test_a_limit_of_unicode_digits_is_400_not_500(
    api: Client, route: str, limit: str
) -> None:
    app = await create_app_with_key(api)
    response = await api.get(
        "/v1/" + route.replace("{app}", app["id"]) + f"?limit={limit}", headers=ADMIN
    )
    assert response.status == 400, (await response.text())[:300]
    assert "limit" in (await response.json())["error"]["message"]


@pytest.mark.parametrize("query", ["wait=", "after=&wait=", "status="])
async def test_an_empty_wait_or_status_is_400(api: Client, query: str) -> None:
    app = await create_app_with_key(api)
    route = "deliveries" if query.startswith("status") else "events"
    response = await api.get(f"/v1/apps/{app['id']}/{route}?{query}", headers=ADMIN)
    assert response.status == 400, (await response.text())[:300]
