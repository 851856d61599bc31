"""/openapi.json describes exactly the routes the router serves, with valid schemas that resolve;
the route table and the schema files agree with each other and with hookrelay.statuses."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson
import pytest
from aiohttp import web
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from hookrelay.api.contract import Auth, Body, response_schemas
from hookrelay.api.openapi import openapi_document, response_component
from hookrelay.api.routes import ROUTES, add_routes
from hookrelay.api.views import endpoint_view
from hookrelay.models import Endpoint
from hookrelay.resources import resource_dir
from hookrelay.statuses import DeliveryStatus, EndpointStatus, ErrorKind, SigningScheme
from tests.answers import answer_problems, route_of, schema_errors

DOCUMENT_URI = "urn:hookrelay:openapi"


def router_routes(demo_page: bool = False) -> set[tuple[str, str]]:
    app = web.Application()
    add_routes(app, demo_page)
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


def document_errors(component: str, answer: Any) -> list[str]:
    """How `answer` fails a component of the document, its references resolved in the document."""
    registry: Registry[Any] = Registry().with_resource(
        DOCUMENT_URI, DRAFT202012.create_resource(openapi_document())
    )
    schema = {"$ref": f"{DOCUMENT_URI}#/components/schemas/{component}"}
    validator = Draft202012Validator(schema, registry=registry)
    return [error.message for error in validator.iter_errors(answer)]


def refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


PAGES = {("GET", "/console"), ("GET", "/console/{asset}")}


def test_the_spec_lists_every_route_of_the_router_and_no_other_but_the_console() -> None:
    assert spec_routes() == router_routes() - PAGES
    assert router_routes() >= PAGES


def test_the_demo_page_is_served_beside_the_api_not_described_in_it() -> None:
    assert router_routes(demo_page=True) - router_routes() == {
        ("GET", "/demo"),
        ("GET", "/demo/{asset}"),
    }


def test_each_route_is_declared_once_with_its_own_operation_id() -> None:
    assert len({(route.method, route.path) for route in ROUTES}) == len(ROUTES)
    assert len({route.operation_id() for route in ROUTES}) == len(ROUTES)


def test_every_component_schema_is_a_valid_json_schema() -> None:
    for schema in openapi_document()["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_every_reference_resolves() -> None:
    document = openapi_document()
    resolver = (
        Registry()
        .with_resource(DOCUMENT_URI, DRAFT202012.create_resource(document))
        .resolver(DOCUMENT_URI)
    )
    found = refs(document)
    assert any("/$defs/" in ref for ref in found)  # parts of a file resolve too, not only files
    for ref in found:
        assert ref.startswith("#/components/schemas/"), ref
        assert resolver.lookup(ref).contents, ref


def test_every_schema_file_names_itself_and_is_valid() -> None:
    for name, schema in response_schemas().items():
        assert schema["$id"].endswith(f"/schemas/responses/{name}.json"), name
        Draft202012Validator.check_schema(schema)


def test_every_answer_and_request_the_table_names_is_a_schema_file() -> None:
    requests = {path.stem for path in (resource_dir("schemas") / "requests").glob("*.json")}
    for route in ROUTES:
        for answer in route.responses().values():
            assert answer is None or isinstance(answer, Body) or answer in response_schemas()
        assert route.request is None or route.request in requests


def test_every_response_schema_file_is_an_answer_or_a_part_of_one() -> None:
    named = {answer for route in ROUTES for answer in route.responses().values()}
    referenced = {
        ref.partition("#")[0].removesuffix(".json")
        for schema in response_schemas().values()
        for ref in refs(schema)
    }
    assert set(response_schemas()) <= named | referenced


@pytest.mark.parametrize("enum", [DeliveryStatus, EndpointStatus, SigningScheme, ErrorKind])
def test_each_enumerated_value_in_the_answers_is_the_statuses_enum(enum: type[StrEnum]) -> None:
    component = enum.__name__  # DeliveryStatus is schemas/responses/delivery_status.json
    values = openapi_document()["components"]["schemas"][component]["enum"]
    assert values == [member.value for member in enum]


def test_the_enums_are_where_the_answers_name_them() -> None:
    schemas = openapi_document()["components"]["schemas"]
    fields = schemas["Endpoint"]["$defs"]["fields"]["properties"]
    assert fields["status"] == {"$ref": "#/components/schemas/EndpointStatus"}
    assert fields["signing"] == {"$ref": "#/components/schemas/SigningScheme"}
    delivery = schemas["Delivery"]["$defs"]["fields"]["properties"]
    assert delivery["status"] == {"$ref": "#/components/schemas/DeliveryStatus"}
    error_kind = schemas["Attempt"]["properties"]["error_kind"]
    assert {"$ref": "#/components/schemas/ErrorKind"} in error_kind["anyOf"]


def test_components_are_named_after_their_files() -> None:
    names = set(openapi_document()["components"]["schemas"])
    assert {response_component(name) for name in response_schemas()} <= names
    assert response_component("app_key_page") == "AppKeyPage"


def test_only_public_routes_are_outside_v1() -> None:
    for route in ROUTES:
        outside = not route.path.startswith("/v1/")
        assert outside == (route.auth in (Auth.PUBLIC, Auth.METRICS_TOKEN)), route.path


def test_request_bodies_are_the_schemas_the_handlers_validate_with() -> None:
    schemas = openapi_document()["components"]["schemas"]
    assert schemas["request.endpoint_create"]["properties"]["url"]["maxLength"] == 2048
    assert schemas["request.event_batch"]["properties"]["events"]["maxItems"] == 1000


def test_batch_items_are_described_as_the_single_event_request() -> None:
    schemas = openapi_document()["components"]["schemas"]
    items = schemas["request.event_batch"]["properties"]["events"]["items"]
    assert items == {"$ref": "#/components/schemas/request.event_create"}


def hmac_endpoint_answer() -> dict[str, Any]:
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
    answer: dict[str, Any] = orjson.loads(
        orjson.dumps({**endpoint_view(endpoint), "secret": "whsec_x"})
    )
    return answer


def test_a_new_hmac_endpoint_answer_matches_its_schema() -> None:
    answer = hmac_endpoint_answer()
    assert answer["public_key"] is None
    assert not document_errors("EndpointWithSecret", answer)
    assert not schema_errors("endpoint_with_secret", answer)


def test_an_answer_with_a_field_its_schema_does_not_name_is_refused() -> None:
    answer = {**hmac_endpoint_answer(), "colour": "blue"}
    assert document_errors("EndpointWithSecret", answer)
    assert schema_errors("endpoint_with_secret", answer)
    assert document_errors("Endpoint", hmac_endpoint_answer())  # the secret is not an endpoint's


def test_an_answer_without_a_field_its_schema_requires_is_refused() -> None:
    answer = hmac_endpoint_answer()
    del answer["secret"]
    assert schema_errors("endpoint_with_secret", answer)
    assert not schema_errors("endpoint", answer)


def test_a_status_outside_the_enum_is_refused() -> None:
    answer = {**hmac_endpoint_answer(), "status": "asleep"}
    assert schema_errors("endpoint_with_secret", answer)


# The check every integration test's client makes of each answer (tests/integration/conftest.py).
JSON = "application/json"
APP_ROUTE = route_of("GET", "/v1/apps/{app_id}")
STREAM_ROUTE = route_of("GET", "/v1/apps/{app_id}/events/stream")
DELETE_ROUTE = route_of("DELETE", "/v1/apps/{app_id}")
APP = {
    "id": "app_1",
    "name": "acme",
    "uid": None,
    "created_at": "2026-01-01T00:00:00+00:00",
    "updated_at": "2026-01-01T00:00:00+00:00",
}
ERROR = {"error": {"code": "not_found", "message": "no such app", "details": None}}


def test_an_answer_as_declared_passes() -> None:
    assert not answer_problems(APP_ROUTE, 200, JSON, orjson.dumps(APP))
    assert not answer_problems(APP_ROUTE, 404, JSON, orjson.dumps(ERROR))
    assert not answer_problems(STREAM_ROUTE, 200, "text/event-stream", None)
    assert not answer_problems(DELETE_ROUTE, 204, "application/octet-stream", None)
    assert not answer_problems(None, 405, JSON, orjson.dumps(ERROR))  # no route: an error


def test_an_undeclared_status_fails() -> None:
    assert answer_problems(APP_ROUTE, 201, JSON, orjson.dumps(APP))
    assert answer_problems(APP_ROUTE, 500, JSON, orjson.dumps(ERROR))


def test_a_body_unlike_its_schema_fails() -> None:
    assert answer_problems(APP_ROUTE, 200, JSON, orjson.dumps({**APP, "extra": 1}))
    assert answer_problems(APP_ROUTE, 404, JSON, orjson.dumps(APP))
    assert answer_problems(None, 404, JSON, orjson.dumps(APP))


def test_a_body_of_another_media_type_than_declared_fails() -> None:
    assert answer_problems(APP_ROUTE, 200, "text/plain", None)
    assert answer_problems(STREAM_ROUTE, 200, JSON, b"{}")
    assert answer_problems(DELETE_ROUTE, 204, JSON, b"{}")


def test_an_answer_no_route_matched_must_be_the_json_error_shape() -> None:
    assert answer_problems(None, 404, "text/plain", b"404: Not Found")


def test_a_body_where_none_is_declared_fails_whatever_its_media_type() -> None:
    assert answer_problems(DELETE_ROUTE, 204, "application/octet-stream", b"x")
