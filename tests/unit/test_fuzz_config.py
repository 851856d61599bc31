"""`make fuzz`'s schemathesis config (tests/acceptance/fuzz.toml and what fuzz.py adds to it)."""

from __future__ import annotations

import tomllib
from typing import Any

from hookrelay.api.openapi import openapi_document
from tests.acceptance.fuzz import DELETE_APP, DELETE_CHILDREN, STREAM_GET, Seed, config_text

SEED = Seed(
    app_id="app_1",
    endpoint_id="ep_1",
    event_id="evt_1",
    delivery_id="dlv_1",
    job_id="job-1",
    doomed_key_id="key_1",
)


def fuzz_config() -> dict[str, Any]:
    return tomllib.loads(config_text(SEED))


def bindings_for(config: dict[str, Any], operation_id: str) -> dict[str, Any]:
    bindings = dict(config["parameters"])
    for operation in config.get("operations", []):
        ids = operation.get("include-operation-id", [])
        if operation_id in ([ids] if isinstance(ids, str) else ids):
            bindings.update(operation.get("parameters", {}))
    return bindings


def test_every_path_parameter_gets_a_seeded_value() -> None:
    config = fuzz_config()
    for methods in openapi_document()["paths"].values():
        for operation in methods.values():
            bindings = bindings_for(config, operation["operationId"])
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    assert parameter["name"] in bindings, (operation["operationId"], parameter)


def test_every_bound_dictionary_holds_a_value() -> None:
    config = fuzz_config()
    bound = [
        binding["dictionary"]
        for operation in [config, *config["operations"]]
        for binding in operation.get("parameters", {}).values()
    ]
    for name in bound:
        assert config["dictionaries"][name]["values"], name


def test_the_key_the_app_key_run_calls_with_is_never_deleted() -> None:
    bindings = bindings_for(fuzz_config(), "delete_v1_apps_app_id_keys_key_id")
    assert bindings["key_id"]["dictionary"] == "doomed_key_id"


def test_the_deletes_are_the_only_operations_that_destroy() -> None:
    deletes = {
        operation["operationId"]
        for methods in openapi_document()["paths"].values()
        for method, operation in methods.items()
        if method == "delete"
    }
    assert deletes == {DELETE_APP, *DELETE_CHILDREN}
    assert STREAM_GET not in deletes
