"""Ingest on the in-memory fakes: what is refused, what is recorded, what is enqueued, what is
announced; Idempotency-Keys."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
import structlog

from hookrelay.errors import Conflict, Contention, DependencyUnavailable, InvalidPayload, NotFound
from hookrelay.models import Event
from hookrelay.services import enqueue
from hookrelay.statuses import DeliveryStatus, EndpointStatus
from tests.fakes import FakeEvents
from tests.unit.services.conftest import Rig, build_rig


def one(events: list[Event]) -> dict[str, Any]:
    return {"id": events[0].id, "type": events[0].type}


def many(events: list[Event]) -> dict[str, Any]:
    return {"data": [{"id": e.id} for e in events]}


def data_of(event: Event) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(event.body)["data"]
    return data


async def ingest_one(rig: Rig, app_id: str, body: Any, key: str | None = None) -> Any:
    """Ingest one event, then wait for the enqueue it set off (ingest does not)."""
    answer = await rig.ingest.ingest(app_id, [body], key, one)
    await rig.enqueuer.close()
    return answer


async def test_ingest_answers_after_the_commit_without_waiting_for_the_queue(rig: Rig) -> None:
    app = rig.store.add_app()
    rig.store.add_endpoint(app.id)
    gate = rig.new_deliveries.gate = asyncio.Event()
    answer = await asyncio.wait_for(
        rig.ingest.ingest(app.id, [{"type": "image.ready", "data": {}}], None, one), 5
    )
    assert answer["id"] == rig.store.events[0].id
    assert rig.new_deliveries.enqueued == []  # on its way
    closing = asyncio.create_task(rig.enqueuer.close())
    await asyncio.sleep(0)
    assert not closing.done()  # a process stopping waits for it
    gate.set()
    await closing
    assert rig.new_deliveries.enqueued == [d.id for d in rig.store.deliveries.values()]


async def test_an_event_is_recorded_and_its_rendered_answer_returned(rig: Rig) -> None:
    app = rig.store.add_app()
    answer = await ingest_one(rig, app.id, {"type": "image.ready", "data": {"n": 1}})
    [event] = rig.store.events
    assert answer == {"id": event.id, "type": "image.ready"}
    assert (event.app_id, data_of(event)) == (app.id, {"n": 1})


async def test_each_subscribed_endpoint_gets_a_delivery_enqueued_as_new(rig: Rig) -> None:
    app = rig.store.add_app()
    first, second = rig.store.add_endpoint(app.id), rig.store.add_endpoint(app.id)
    rig.store.add_endpoint(app.id, event_types=["job.completed"])  # not subscribed
    await ingest_one(rig, app.id, {"type": "image.ready", "data": {}})
    deliveries = list(rig.store.deliveries.values())
    assert {d.endpoint_id for d in deliveries} == {first.id, second.id}
    assert sorted(rig.new_deliveries.enqueued) == sorted(d.id for d in deliveries)
    assert rig.queue.enqueued == []  # new deliveries go through the coalescing enqueue only


async def test_only_due_deliveries_are_enqueued_not_those_held_for_a_paused_endpoint(
    rig: Rig,
) -> None:
    app = rig.store.add_app()
    active = rig.store.add_endpoint(app.id)
    rig.store.add_endpoint(app.id, status=EndpointStatus.PAUSED)
    await ingest_one(rig, app.id, {"type": "image.ready", "data": {}})
    held = [d for d in rig.store.deliveries.values() if d.status == DeliveryStatus.HELD]
    assert len(held) == 1
    [due] = rig.new_deliveries.enqueued
    assert rig.store.deliveries[due].endpoint_id == active.id


async def test_nothing_is_enqueued_when_no_delivery_is_due(rig: Rig) -> None:
    app = rig.store.add_app()
    await ingest_one(rig, app.id, {"type": "image.ready", "data": {}})
    assert rig.new_deliveries.calls == 0


async def test_an_enqueue_failure_is_logged_and_the_events_are_still_accepted(rig: Rig) -> None:
    app = rig.store.add_app()
    rig.store.add_endpoint(app.id)
    rig.new_deliveries.failure = ConnectionError("redis is away")
    with structlog.testing.capture_logs() as logs:
        answer = await ingest_one(rig, app.id, {"type": "image.ready", "data": {}})
    assert answer["id"] == rig.store.events[0].id
    [warning] = [entry for entry in logs if entry["log_level"] == "warning"]
    assert warning["event"] == "enqueue failed; the sweeper will pick these up"
    assert "redis is away" in warning["error"]


async def test_the_commit_notice_names_the_app_once_per_request(rig: Rig) -> None:
    app = rig.store.add_app()
    bodies = [{"type": "image.ready", "data": {"n": n}} for n in range(3)]
    await rig.ingest.ingest(app.id, bodies, None, many, batch=True)
    assert rig.notices.committed_apps == [app.id]


async def test_a_refused_request_records_nothing_and_announces_nothing(rig: Rig) -> None:
    app = rig.store.add_app()
    with pytest.raises(InvalidPayload):
        await ingest_one(rig, app.id, {"type": "image.ready"})
    assert (rig.store.calls, rig.notices.committed_apps) == ([], [])


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"data": {}}, "$"),
        ({"type": "Not A Type", "data": {}}, "$.type"),
        ({"type": "image.ready", "data": []}, "$.data"),
        ({"type": "image.ready", "data": {}, "extra": 1}, "$"),
    ],
)
async def test_a_malformed_event_is_refused_naming_the_path(
    rig: Rig, body: dict[str, Any], path: str
) -> None:
    with pytest.raises(InvalidPayload) as refused:
        await ingest_one(rig, rig.store.add_app().id, body)
    assert path in [d["path"] for d in refused.value.details]


@pytest.mark.parametrize("event_type", ["endpoint.disabled", "delivery.dead", "delivery.recovered"])
async def test_an_operational_type_is_reserved_for_hookrelay(rig: Rig, event_type: str) -> None:
    with pytest.raises(InvalidPayload, match="reserved") as refused:
        await ingest_one(rig, rig.store.add_app().id, {"type": event_type, "data": {}})
    assert refused.value.details == [
        {"path": "$.type", "message": "is a reserved operational event type"}
    ]


async def test_a_job_event_must_name_its_job(rig: Rig) -> None:
    with pytest.raises(InvalidPayload):
        await ingest_one(rig, rig.store.add_app().id, {"type": "job.started", "data": {}})


async def test_a_job_id_beside_the_data_of_a_job_event_is_copied_into_it(rig: Rig) -> None:
    body = {"type": "job.started", "data": {}, "job_id": "job_7"}
    await ingest_one(rig, rig.store.add_app().id, body)
    [event] = rig.store.events
    assert (event.job_id, data_of(event)) == ("job_7", {"job_id": "job_7"})


async def test_a_job_id_beside_the_data_of_a_custom_event_is_kept_out_of_its_data(
    rig: Rig,
) -> None:
    body = {"type": "image.ready", "data": {"n": 1}, "job_id": "job_7"}
    await ingest_one(rig, rig.store.add_app().id, body)
    [event] = rig.store.events
    assert (event.job_id, data_of(event)) == ("job_7", {"n": 1})


async def test_a_job_id_inside_the_data_of_any_event_makes_it_that_jobs(rig: Rig) -> None:
    await ingest_one(
        rig, rig.store.add_app().id, {"type": "image.ready", "data": {"job_id": "job_9"}}
    )
    assert rig.store.events[0].job_id == "job_9"


async def test_two_different_job_ids_are_refused(rig: Rig) -> None:
    body = {"type": "job.started", "data": {"job_id": "job_1"}, "job_id": "job_2"}
    with pytest.raises(InvalidPayload, match="differ") as refused:
        await ingest_one(rig, rig.store.add_app().id, body)
    assert refused.value.details[0]["path"] == "$.job_id"


async def test_a_malformed_job_id_inside_the_data_is_refused_whatever_the_type(rig: Rig) -> None:
    body = {"type": "image.ready", "data": {"job_id": "has spaces"}}
    with pytest.raises(InvalidPayload) as refused:
        await ingest_one(rig, rig.store.add_app().id, body)
    assert refused.value.details[0]["path"] == "$.data.job_id"


async def test_in_a_batch_an_error_names_the_event_it_is_in(rig: Rig) -> None:
    bodies = [{"type": "image.ready", "data": {}}, {"type": "job.started", "data": {}}]
    with pytest.raises(InvalidPayload) as refused:
        await rig.ingest.ingest(rig.store.add_app().id, bodies, None, many, batch=True)
    assert all(d["path"].startswith("$.events[1]") for d in refused.value.details)
    assert rig.store.events == []  # all or none


async def test_the_same_key_and_body_return_the_first_answer_and_record_nothing_more(
    rig: Rig,
) -> None:
    app = rig.store.add_app()
    rig.store.add_endpoint(app.id)
    body = {"type": "image.ready", "data": {"n": 1}}
    first = await ingest_one(rig, app.id, body, key="k1")
    again = await ingest_one(rig, app.id, body, key="k1")
    assert again == first
    assert len(rig.store.events) == 1
    assert len(rig.new_deliveries.enqueued) == 1  # the repeat enqueues nothing


async def test_the_same_key_with_the_same_body_in_another_key_order_is_the_same_request(
    rig: Rig,
) -> None:
    app = rig.store.add_app()
    first = await ingest_one(rig, app.id, {"type": "image.ready", "data": {"a": 1, "b": 2}}, "k")
    again = await ingest_one(rig, app.id, {"data": {"b": 2, "a": 1}, "type": "image.ready"}, "k")
    assert again == first


async def test_the_same_key_with_a_different_body_is_a_conflict(rig: Rig) -> None:
    app = rig.store.add_app()
    await ingest_one(rig, app.id, {"type": "image.ready", "data": {"n": 1}}, key="k1")
    with pytest.raises(Conflict) as refused:
        await ingest_one(rig, app.id, {"type": "image.ready", "data": {"n": 2}}, key="k1")
    assert refused.value.details == {"idempotency_key": "k1"}
    assert len(rig.store.events) == 1


async def test_a_key_binds_per_route_so_the_batch_route_has_its_own(rig: Rig) -> None:
    app = rig.store.add_app()
    body = {"type": "image.ready", "data": {"n": 1}}
    single = await ingest_one(rig, app.id, body, key="k1")
    batch = await rig.ingest.ingest(app.id, [body], "k1", many, batch=True)
    assert batch != single
    assert len(rig.store.events) == 2


async def test_a_key_binds_per_app(rig: Rig) -> None:
    body = {"type": "image.ready", "data": {}}
    await ingest_one(rig, rig.store.add_app("a").id, body, key="k1")
    await ingest_one(rig, rig.store.add_app("b").id, body, key="k1")
    assert len(rig.store.events) == 2


async def _group_failing_with(
    rig: Rig, error: Exception, requests: int, monkeypatch: pytest.MonkeyPatch
) -> list[Any]:
    """Ingest `requests` events at once (one group) while writing a group raises `error`."""
    app = rig.store.add_app()
    rig.store.add_endpoint(app.id)

    async def failing(_self: FakeEvents, writes: list[Any]) -> list[list[str] | None]:
        raise error

    monkeypatch.setattr(FakeEvents, "insert_together", failing)
    return await asyncio.gather(
        *(
            rig.ingest.ingest(app.id, [{"type": "image.ready", "data": {"n": n}}], None, one)
            for n in range(requests)
        ),
        return_exceptions=True,
    )


@pytest.mark.parametrize("requests", [1, 3])
async def test_a_group_that_met_contention_is_written_request_by_request(
    rig: Rig, requests: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = await _group_failing_with(
        rig, Contention("a lock held elsewhere"), requests, monkeypatch
    )
    assert [a["id"] for a in answers] == [e.id for e in rig.store.events]
    assert rig.store.calls.count("insert_events_once") == requests


async def test_postgres_unreachable_fails_each_request_of_the_group_without_a_retry(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = await _group_failing_with(rig, DependencyUnavailable("down"), 3, monkeypatch)
    assert all(isinstance(a, DependencyUnavailable) for a in answers)
    assert "insert_events_once" not in rig.store.calls


async def test_a_group_refused_for_a_value_is_written_again_but_a_lone_request_is_not(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = await _group_failing_with(rig, NotFound("gone"), 3, monkeypatch)
    assert len(rig.store.events) == 3 and all(isinstance(a, dict) for a in answers)
    [alone] = await _group_failing_with(build_rig(rig.settings), NotFound("gone"), 1, monkeypatch)
    assert isinstance(alone, NotFound)


async def test_a_bug_in_writing_a_group_is_not_written_again(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = await _group_failing_with(rig, KeyError("a bug"), 3, monkeypatch)
    assert all(isinstance(a, KeyError) for a in answers)
    assert rig.store.events == []


async def test_enqueues_left_on_their_way_past_the_bound_go_to_the_sweeper(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(enqueue, "MAX_ON_THEIR_WAY", 2)
    rig.new_deliveries.gate = asyncio.Event()  # Redis hangs
    with structlog.testing.capture_logs() as logs:
        for n in range(4):
            rig.enqueuer.enqueue_new_soon([f"dlv_{n}"])
    assert [e["event"] for e in logs] == [
        "enqueues backed up; the sweeper will pick new deliveries up"
    ]
    await asyncio.sleep(0)
    # A process stopping waits a bounded time, then leaves the rest to the sweeper.
    await asyncio.wait_for(rig.enqueuer.close(wait_s=0.05), 5)
    assert rig.new_deliveries.enqueued == []


# Examples sent to one endpoint


async def test_an_example_goes_to_its_endpoint_alone_under_a_job_of_its_own(rig: Rig) -> None:
    app = rig.store.add_app()
    target, _ = rig.store.add_endpoint(app.id), rig.store.add_endpoint(app.id)
    event, delivery_id = await rig.ingest.send_example(app.id, target.id, {"type": "job.failed"})
    await rig.enqueuer.close()  # wait for the enqueue it set off
    [delivery] = rig.store.deliveries.values()
    assert (delivery.id, delivery.endpoint_id) == (delivery_id, target.id)
    assert rig.new_deliveries.enqueued == [delivery_id]
    assert rig.notices.committed_apps == [app.id]
    data = data_of(event)
    assert data["error"]["code"] == "out_of_memory"  # the schema's example
    assert event.job_id == data["job_id"] and event.job_id.startswith("example_")


async def test_an_example_to_a_paused_endpoint_is_refused_and_writes_nothing(rig: Rig) -> None:
    app = rig.store.add_app()
    paused = rig.store.add_endpoint(app.id, status=EndpointStatus.PAUSED)
    with pytest.raises(Conflict, match="the endpoint is paused"):
        await rig.ingest.send_example(app.id, paused.id, {"type": "job.completed"})
    assert (rig.store.events, rig.store.deliveries) == ([], {})


async def test_an_example_of_a_custom_type_is_refused(rig: Rig) -> None:
    app = rig.store.add_app()
    endpoint = rig.store.add_endpoint(app.id)
    with pytest.raises(InvalidPayload) as refused:
        await rig.ingest.send_example(app.id, endpoint.id, {"type": "image.ready"})
    assert refused.value.details == [{"path": "$.type", "message": "is not a built-in event type"}]
    assert rig.store.calls == []
