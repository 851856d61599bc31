"""/openapi.json describes exactly the routes the router serves, with valid schemas."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from aiohttp import web
from jsonschema import Draft202012Validator

from hookrelay.api.openapi import openapi_document
from hookrelay.api.routes import add_routes
from hookrelay.api.views import endpoint_view
from hookrelay.models import Endpoint


def router_routes() -> set[tuple[str, str]]:
    app = web.Application()
    add_routes(app)
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }


def spec_routes() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in openapi_document()["paths"].items()
        for method in operations
    }


def test_the_spec_lists_every_route_of_the_router_and_no_other() -> None:
    assert spec_routes() == router_routes()


def test_every_component_schema_is_a_valid_json_schema() -> None:
    for schema in openapi_document()["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_every_reference_resolves() -> None:
    document = openapi_document()
    names = set(document["components"]["schemas"])

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    for ref in refs(document):
        assert ref.removeprefix("#/components/schemas/") in names, ref


def test_request_bodies_are_the_schemas_the_handlers_validate_with() -> None:
    schemas = openapi_document()["components"]["schemas"]
    assert schemas["request.endpoint_create"]["properties"]["url"]["maxLength"] == 2048
    assert schemas["request.event_batch"]["properties"]["events"]["maxItems"] == 1000


def test_batch_items_are_described_as_the_single_event_request() -> None:
    schemas = openapi_document()["components"]["schemas"]
    items = schemas["request.event_batch"]["properties"]["events"]["items"]
    assert items == {"$ref": "#/components/schemas/request.event_create"}


def test_a_new_hmac_endpoint_answer_matches_its_schema() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    endpoint = Endpoint(
        id="ep_" + "0" * 32,
        app_id="app_" + "0" * 32,
        url="https://example.com/hooks",
        description="",
        event_types=None,
        status="active",
        disabled_reason=None,
        signing="hmac",
        secret_ciphertext=b"",
        secret_key_id="k1",
        headers={},
        rate_limit_per_s=None,
        created_at=now,
        updated_at=now,
    )
    # As the create and rotate-secret handlers answer: an HMAC endpoint has no public key.
    answer = orjson.loads(orjson.dumps({**endpoint_view(endpoint), "secret": "whsec_x"}))
    assert answer["public_key"] is None
    schema = openapi_document()["components"]["schemas"]["EndpointWithSecret"]
    assert not list(Draft202012Validator(schema).iter_errors(answer))
