"""CPU per validation: the API's own validation (`hookrelay.schemas`) against the validators it
could use, on realistic bodies of every request schema and every built-in event type.

    python -m hookrelay.bench.validate [--number 20000]

Each figure is the best of 5 runs of `number` calls, in µs per call, on one core (a batch of
100 events: per batch). A library that is not installed is left out (fastjsonschema is not a
dependency: install it to compare); nan where it cannot compile the schema.
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable
from functools import partial
from typing import Any

from hookrelay import schemas

REPEATS = 5
JOB_ID = "gen_01J9Z3K7QW4M8T2V6X0B5N1R3C"
BATCH_SIZE = 100

# Bodies as providers and operators send them: a few fields beyond the required ones.
EVENT_DATA: dict[str, dict[str, Any]] = {
    "job.queued": {"job_id": JOB_ID, "model": "sdxl-turbo", "queue_position": 3},
    "job.started": {
        "job_id": JOB_ID,
        "model": "sdxl-turbo",
        "started_at": "2026-01-01T12:00:00.000Z",
        "metadata": {"user": "u_123", "region": "eu-west-1"},
    },
    "job.progress": {
        "job_id": JOB_ID,
        "percent": 42.5,
        "message": "denoising step 21/50",
        "output": {"preview": "https://cdn.example.com/p/42.png"},
    },
    "job.completed": {
        "job_id": JOB_ID,
        "model": "sdxl-turbo",
        "output": {"caption": "a lighthouse at dawn", "seed": 1234567},
        "artifacts": [
            {
                "url": "https://cdn.example.com/a/1.png",
                "content_type": "image/png",
                "size": 1843921,
                "name": "1.png",
            },
            {"url": "https://cdn.example.com/a/2.png", "content_type": "image/png", "size": 1799},
        ],
        "started_at": "2026-01-01T12:00:00.000Z",
        "finished_at": "2026-01-01T12:00:09.812Z",
        "metadata": {"user": "u_123", "tokens": 77},
    },
    "job.failed": {
        "job_id": JOB_ID,
        "error": {"code": "out_of_memory", "message": "the model did not fit", "retryable": True},
        "finished_at": "2026-01-01T12:00:09.812Z",
    },
    "job.cancelled": {"job_id": JOB_ID, "reason": "cancelled by user"},
    "job.action_required": {
        "job_id": JOB_ID,
        "action": {
            "kind": "approval",
            "message": "Spend 40 credits on an upscale?",
            "url": "https://app.example.com/approve/abc",
            "expires_at": "2026-01-01T13:00:00Z",
            "options": ["approve", "reject"],
        },
    },
}


def _event(event_type: str) -> dict[str, Any]:
    return {"type": event_type, "data": EVENT_DATA[event_type], "job_id": JOB_ID}


REQUESTS: dict[str, Any] = {
    "app_create": {"name": "Image generator", "uid": "image-gen.v1_prod"},
    "app_update": {"name": "Image generator v2"},
    "app_key_create": {"name": "ci"},
    "endpoint_create": {
        "url": "https://hooks.example.com/hookrelay",
        "event_types": ["job.completed", "job.failed", "job.action_required"],
        "description": "Production receiver",
        "signing": "hmac",
        "headers": {"X-Tenant": "acme"},
        "rate_limit_per_s": 50,
    },
    "endpoint_update": {"status": "paused", "event_types": None},
    "event_create": _event("job.completed"),
    "event_batch": {"events": [_event(t) for t in EVENT_DATA] * (BATCH_SIZE // len(EVENT_DATA))},
    "recover": {"since": "1h", "dry_run": True},
    "replay": {"status": "dead", "event_type": "job.completed", "since": "2026-01-01T00:00:00Z"},
    "stream_token_create": {"job_id": JOB_ID, "expires_in": 600},
}


def per_call_us(call: Callable[[], object], number: int) -> float:
    """The best of REPEATS runs of `number` calls, in µs per call."""
    return min(timeit.repeat(call, number=number, repeat=REPEATS)) / number * 1e6


def _libraries() -> dict[str, Callable[[dict[str, Any]], Callable[[Any], object]]]:
    """Each installed validator, as: schema (refs inlined) -> a function that validates."""
    found: dict[str, Callable[[dict[str, Any]], Callable[[Any], object]]] = {}
    try:
        import jsonschema_rs

        found["jsonschema-rs"] = lambda schema: jsonschema_rs.validator_for(schema).is_valid
    except ImportError:
        pass
    try:
        import jsonschema

        found["jsonschema"] = lambda schema: jsonschema.Draft202012Validator(schema).is_valid
    except ImportError:
        pass
    try:
        import fastjsonschema  # type: ignore[import-not-found,unused-ignore]

        def compile_draft7(schema: dict[str, Any]) -> Callable[[Any], object]:
            # It knows drafts 4 to 7; these schemas use nothing that 2020-12 changed.
            draft7 = {**schema, "$schema": "http://json-schema.org/draft-07/schema#"}
            validate = fastjsonschema.compile(draft7)

            def is_valid(document: Any) -> bool:
                try:
                    validate(document)
                except fastjsonschema.JsonSchemaException:
                    return False
                return True

            return is_valid

        found["fastjsonschema"] = compile_draft7
    except ImportError:
        pass
    return found


def _ingest_us(number: int) -> float:
    """What ingest validates of one event (as in a batch): its envelope, then its data and the
    data's job_id; the mean over the built-in types."""
    events = [_event(event_type) for event_type in EVENT_DATA]

    def ingest() -> None:
        for event in events:
            schemas.validate_request("event_create", event)
            schemas.validate_event_data(event["type"], event["data"])
            schemas.check_data_job_id(event["data"])

    return per_call_us(ingest, max(1, number // len(events))) / len(events)


def measure(number: int) -> list[tuple[str, dict[str, float]]]:
    """(case, {validator: µs per call}) for every request schema and event type."""
    libraries = _libraries()
    rows: list[tuple[str, dict[str, float]]] = []
    cases: list[tuple[str, dict[str, Any], Any, Callable[[], object]]] = []
    request_schemas = schemas.loaded_schemas("requests")
    for name, body in REQUESTS.items():
        schema = schemas.inline_refs(request_schemas[name], request_schemas)
        cases.append(
            (f"request {name}", schema, body, partial(schemas.validate_request, name, body))
        )
    event_schemas = schemas.loaded_schemas("events")
    for event_type, data in EVENT_DATA.items():
        cases.append(
            (
                f"event {event_type}",
                event_schemas[event_type],
                data,
                partial(schemas.validate_event_data, event_type, data),
            )
        )
    rows.append(("ingest, per event (all types)", {"hookrelay": _ingest_us(number)}))
    for case, schema, document, ours in cases:
        scale = max(1, number // (BATCH_SIZE if "batch" in case else 1))  # a batch: 100 events
        figures = {"hookrelay": per_call_us(ours, scale)}
        for library, compile_schema in libraries.items():
            try:
                validate = compile_schema(schema)
            except Exception:  # fastjsonschema rewrites a $ inside [...] and cannot compile
                figures[library] = float("nan")
                continue
            assert validate(document), (library, case)
            figures[library] = per_call_us(partial(validate, document), scale)
        rows.append((case, figures))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--number", type=int, default=20_000, help="calls per run")
    rows = measure(parser.parse_args().number)
    names = list(rows[-1][1])
    print(f"{'µs per validation':32}" + "".join(f"{n:>16}" for n in names))
    for case, figures in rows:
        print(f"{case:32}" + "".join(f"{figures.get(n, float('nan')):16.2f}" for n in names))


if __name__ == "__main__":
    main()
