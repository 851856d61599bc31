"""GET /: a newcomer's first request answers what this is and where to go next."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from jsonschema import Draft202012Validator

import hookrelay
from hookrelay.api.openapi import openapi_document

Client = TestClient  # type: ignore[type-arg]


def index_schema() -> Draft202012Validator:
    return Draft202012Validator(openapi_document()["components"]["schemas"]["Index"])


async def test_the_index_names_the_server_and_links_without_auth(api: Client) -> None:
    response = await api.get("/")
    assert response.status == 200
    body = await response.json()
    assert body["name"] == "hookrelay"
    assert body["version"] == hookrelay.__version__
    assert body["links"]["openapi"] == "/openapi.json"
    assert body["links"]["health"] == "/healthz"
    assert "demo" not in body["links"]  # the demo page is off here
    index_schema().validate(body)


@pytest.mark.settings(demo_page=True)
async def test_the_index_links_the_demo_page_where_it_is_served(api: Client) -> None:
    body = await (await api.get("/")).json()
    assert body["links"]["demo"] == "/demo"
    index_schema().validate(body)


@pytest.mark.settings(demo_page=True)
async def test_every_link_of_the_index_answers(api: Client) -> None:
    links = (await (await api.get("/")).json())["links"]
    for name, path in links.items():
        response = await api.get(path)
        assert response.status == 200, f"{name}: {path} answered {response.status}"
