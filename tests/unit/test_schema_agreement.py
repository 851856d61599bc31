"""The API validates with jsonschema-rs; the reference implementation (jsonschema, in Python) must
agree with it on every body: the same verdict, and the same failing paths in the 422's details.
Bodies are drawn near each schema's edges: its own property names and a stranger, strings that
almost match its patterns, numbers at its bounds, lists at their lengths."""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from hookrelay.api.errors import answer_of
from hookrelay.errors import InvalidPayload
from hookrelay.schemas import inline_refs, loaded_schemas, validate_event_data, validate_request

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children),
    max_leaves=10,
)
# Strings that test the patterns: dotted words, ids, header names and values, with the
# characters the patterns refuse (newline, NUL, upper case, spaces, non-ASCII) mixed in.
edge_strings = st.one_of(
    st.text(max_size=6),
    st.from_regex(r"[a-z0-9_]{1,6}(\.[a-z0-9_]{1,6}){0,3}\n?", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9_.:\-]{0,6}\n?", fullmatch=True),
    st.from_regex(r"(app_|ep_)?[0-9a-f]{0,33}\n?", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9!#$%&'*+.^_`|~\- \t\r\n\x00:]{0,6}", fullmatch=True),
    st.text(alphabet="a.\n\x00é", max_size=8),
    st.sampled_from(["", ".", "..", "hmac", "ed25519", "active", "paused", "dead", "succeeded"]),
)


def _long_string(bound: int) -> st.SearchStrategy[str]:
    """Strings just inside and just outside a length bound (of the pattern's alphabet)."""
    return st.integers(max(0, bound - 1), bound + 1).map(lambda n: "a.b" + "c" * max(0, n - 3))


def _merged(schema: dict[str, Any], sub: dict[str, Any], keyword: str) -> dict[str, Any]:
    """`schema` with one branch of its `keyword` (anyOf...) folded in, the branch removed."""
    properties = dict(schema.get("properties", {}))
    for name, rule in sub.get("properties", {}).items():
        properties[name] = {**properties.get(name, {}), **rule}
    required = [*schema.get("required", []), *sub.get("required", [])]
    folded = {**schema, **sub, "properties": properties, "required": required}
    folded.pop(keyword)
    return folded


def _pattern(schema: dict[str, Any]) -> str:
    return str(schema["pattern"]).removesuffix("(?!\\n)")


def shaped(schema: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values of the shape `schema` asks for, valid as a rule: the centre of the neighbourhood
    that `near` draws around (without it, a valid batch of events would be rare)."""
    if not isinstance(schema, dict) or depth > 4:
        return json_values
    for keyword in ("anyOf", "oneOf"):
        if keyword in schema:
            return st.one_of(
                *(shaped(_merged(schema, sub, keyword), depth) for sub in schema[keyword])
            )
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kinds = schema.get("type")
    kind = kinds if isinstance(kinds, str) else next((k for k in kinds or [] if k != "null"), None)
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        if not props and isinstance(extra, dict):  # a map, such as an endpoint's headers
            names = schema.get("propertyNames", {})
            keys = (
                st.from_regex(_pattern(names), fullmatch=True) if "pattern" in names else st.text()
            )
            return st.dictionaries(keys, shaped(extra, depth + 1), max_size=3)
        required = [n for n in schema.get("required", []) if n in props]
        return st.fixed_dictionaries(
            {n: shaped(props[n], depth + 1) for n in required},
            optional={n: shaped(props[n], depth + 1) for n in props if n not in required},
        )
    if kind == "array":
        least = schema.get("minItems", 0)
        return st.lists(
            shaped(schema.get("items"), depth + 1),
            min_size=least,
            max_size=max(least, min(3, schema.get("maxItems", 3))),
            unique_by=orjson.dumps if schema.get("uniqueItems") else None,
        )
    if kind == "string":
        least, most = schema.get("minLength", 0), min(schema.get("maxLength", 12), 300)
        if "pattern" in schema:
            texts = st.from_regex(_pattern(schema), fullmatch=True)
            return texts.filter(lambda t: least <= len(t) <= most)
        return st.text(min_size=least, max_size=most)
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "number":
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    return json_values


def near(schema: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values near the edges of `schema`: mostly of its shape, sometimes anything."""
    if not isinstance(schema, dict) or depth > 4:
        return json_values
    options: list[st.SearchStrategy[Any]] = [json_scalars, shaped(schema, depth)]
    if "enum" in schema:
        options.append(st.sampled_from(schema["enum"]))
    if "properties" in schema or schema.get("type") == "object":
        names = [*schema.get("properties", {}), "extra"]
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        options.append(
            st.dictionaries(
                st.sampled_from(names) | edge_strings,
                st.one_of(
                    *(near(props[n], depth + 1) for n in props),
                    near(extra, depth + 1) if isinstance(extra, dict) else json_values,
                ),
                max_size=len(names) + 1,
            )
        )
    if "items" in schema or schema.get("type") in ("array", ["array", "null"]):
        items = near(schema.get("items"), depth + 1)
        most = schema.get("maxItems", 4)
        options.append(st.lists(items, max_size=min(most + 1, 6)))
        options.append(st.lists(items, min_size=1, max_size=2).map(lambda xs: xs + xs[:1]))
    kinds = schema.get("type")
    if kinds == "string" or (isinstance(kinds, list) and "string" in kinds) or "pattern" in schema:
        options.append(edge_strings)
        if "pattern" in schema:
            pattern = _pattern(schema)
            options.append(st.from_regex(pattern, fullmatch=True).filter(lambda t: len(t) < 300))
            options.append(st.from_regex(pattern).filter(lambda t: len(t) < 300))
        if "maxLength" in schema:
            options.append(_long_string(schema["maxLength"]))
    if kinds in ("integer", "number") or (isinstance(kinds, list) and "integer" in kinds):
        bounds = [schema.get(k) for k in ("minimum", "maximum") if k in schema]
        for bound in bounds:
            options.append(
                st.sampled_from([bound - 1, bound, bound + 1, bound - 0.5, float(bound)])
            )
    for keyword in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(keyword, []):
            options.append(near({**schema, **sub, keyword: []}, depth + 1))
    return st.one_of(*options)


@cache
def reference(kind: str, name: str) -> Draft202012Validator:
    schemas = loaded_schemas(kind)
    registry: Registry[Any] = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas.values()
    )
    return Draft202012Validator(schemas[name], registry=registry)


def reference_paths(kind: str, name: str, document: Any, root: str) -> list[str]:
    return sorted(
        root + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        for error in reference(kind, name).iter_errors(document)
    )


def assert_same_paths(found: list[str], expected: list[str]) -> None:
    """The API reports the first 20 errors by path; sorted by text, the reference's may differ
    from those in which 20 they keep, not in what they hold. A member named "" is written
    `$.headers.`, which the two libraries may each report at its object (`$.headers`): the same
    place, as a path can say it."""
    found = sorted(path.removesuffix(".") for path in found)
    expected = sorted(path.removesuffix(".") for path in expected)
    if len(expected) <= 20:
        assert found == expected
    else:
        assert len(found) == 20 and set(found) <= set(expected)


def refused_paths(call: Any, *args: Any) -> list[str]:
    try:
        call(*args)
    except InvalidPayload as refused:
        assert answer_of(refused) == (422, "invalid_payload")
        return sorted(detail["path"] for detail in refused.details)
    return []


def drawn_from(kind: str, name: str) -> Any:
    """The schema bodies are drawn near: with a sibling named by $ref (a batch's events) in it."""
    return inline_refs(loaded_schemas(kind)[name], loaded_schemas(kind))


REQUESTS = sorted(loaded_schemas("requests"))
EVENTS = sorted(loaded_schemas("events"))
SCHEMAS = [("requests", n) for n in REQUESTS] + [("events", n) for n in EVENTS]
# How the API validates a document of each kind, and where its paths start.
VALIDATE = {"requests": (validate_request, "$"), "events": (validate_event_data, "$.data")}


@pytest.mark.parametrize(("kind", "name"), SCHEMAS)
# Derandomized: the same 75 bodies on every run, so that the suite's verdict is repeatable.
@settings(max_examples=75, deadline=None, derandomize=True)
@given(data=st.data())
def test_a_body_gets_the_verdict_and_paths_of_the_reference(
    kind: str, name: str, data: st.DataObject
) -> None:
    document = data.draw(near(drawn_from(kind, name)))
    validate, root = VALIDATE[kind]
    expected = reference_paths(kind, name, document, root)
    assert_same_paths(refused_paths(validate, name, document), expected)


@pytest.mark.parametrize(("kind", "name"), SCHEMAS)
@pytest.mark.parametrize("verdict", [True, False])
def test_the_bodies_drawn_reach_both_verdicts(kind: str, name: str, verdict: bool) -> None:
    """Else the tests above would check little."""
    found = find(
        near(drawn_from(kind, name)),
        lambda document: reference(kind, name).is_valid(document) == verdict,
        settings=settings(max_examples=1000, database=None, phases=[Phase.generate]),
    )
    assert reference(kind, name).is_valid(found) == verdict


def test_usual_events_are_valid_and_near_misses_are_not() -> None:
    event = {"type": "job.completed", "data": {"job_id": "j1"}, "job_id": "j1"}
    assert validate_request("event_create", event) is event
    validate_request("event_batch", {"events": [event] * 3})
    assert refused_paths(validate_request, "event_create", {**event, "type": "Job.Completed"}) == [
        "$.type"
    ]
    assert refused_paths(validate_request, "event_create", {**event, "job_id": "j1\n"}) == [
        "$.job_id"
    ]
