"""/openapi.json describes exactly the routes the router serves, with valid schemas."""

from __future__ import annotations

from aiohttp import web
from jsonschema import Draft202012Validator

from hookrelay.api.openapi import openapi_document
from hookrelay.api.routes import add_routes


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
