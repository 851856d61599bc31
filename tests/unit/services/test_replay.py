"""Replays on the in-memory fakes: refused for a disabled endpoint, counted in a dry run,
made in batches until the cursor ends, and only the new deliveries enqueued."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hookrelay.errors import Conflict, NotFound
from hookrelay.models import Delivery, DeliveryFilter, Endpoint
from hookrelay.statuses import DeliveryStatus, EndpointStatus
from tests.unit.services.conftest import Rig

DEAD = DeliveryFilter(status=DeliveryStatus.DEAD)


def dead_deliveries(rig: Rig, endpoint: Endpoint, count: int) -> list[Delivery]:
    """`count` dead deliveries to `endpoint`, each of its own event."""
    return [
        rig.store.add_delivery(
            rig.store.add_event(endpoint.app_id), endpoint, status=DeliveryStatus.DEAD
        )
        for _ in range(count)
    ]


def replays_of(rig: Rig, originals: list[Delivery]) -> list[Delivery]:
    ids = {d.id for d in originals}
    return [d for d in rig.store.deliveries.values() if d.replay_of in ids]


async def test_a_replay_is_a_new_pending_delivery_enqueued_for_its_first_attempt(
    rig: Rig,
) -> None:
    endpoint = rig.store.add_endpoint(rig.store.add_app().id)
    [dead] = dead_deliveries(rig, endpoint, 1)
    new_id, original = await rig.replays.replay_delivery(endpoint.app_id, dead.id)
    assert original == dead.id
    assert rig.store.deliveries[new_id].status == DeliveryStatus.PENDING
    assert rig.queue.enqueued == [(new_id, 0)]


async def test_a_replay_of_a_replay_names_the_original(rig: Rig) -> None:
    endpoint = rig.store.add_endpoint(rig.store.add_app().id)
    [dead] = dead_deliveries(rig, endpoint, 1)
    first, _ = await rig.replays.replay_delivery(endpoint.app_id, dead.id)
    _, original = await rig.replays.replay_delivery(endpoint.app_id, first)
    assert original == dead.id


async def test_a_replay_to_a_paused_endpoint_is_held_and_not_enqueued(rig: Rig) -> None:
    endpoint = rig.store.add_endpoint(rig.store.add_app().id)
    [dead] = dead_deliveries(rig, endpoint, 1)
    rig.store.endpoints[endpoint.id] = replace(endpoint, status=EndpointStatus.PAUSED)
    new_id, _ = await rig.replays.replay_delivery(endpoint.app_id, dead.id)
    assert rig.store.deliveries[new_id].status == DeliveryStatus.HELD
    assert rig.queue.enqueued == []


async def test_replaying_one_delivery_to_a_disabled_endpoint_is_a_conflict(rig: Rig) -> None:
    endpoint = rig.store.add_endpoint(
        rig.store.add_app().id, status=EndpointStatus.DISABLED, disabled_reason="410 Gone"
    )
    [dead] = dead_deliveries(rig, endpoint, 1)
    with pytest.raises(Conflict) as refused:
        await rig.replays.replay_delivery(endpoint.app_id, dead.id)
    assert refused.value.details == {"endpoint_id": endpoint.id, "disabled_reason": "410 Gone"}
    assert replays_of(rig, [dead]) == []


async def test_a_bulk_replay_for_a_disabled_endpoint_is_a_conflict_before_counting(
    rig: Rig,
) -> None:
    endpoint = rig.store.add_endpoint(rig.store.add_app().id, status=EndpointStatus.DISABLED)
    dead_deliveries(rig, endpoint, 2)
    filters = DeliveryFilter(status=DeliveryStatus.DEAD, endpoint_id=endpoint.id)
    with pytest.raises(Conflict):
        await rig.replays.replay_deliveries(endpoint.app_id, filters, dry_run=False)
    assert "count_deliveries" not in rig.store.calls


async def test_another_apps_delivery_is_not_found(rig: Rig) -> None:
    endpoint = rig.store.add_endpoint(rig.store.add_app().id)
    [dead] = dead_deliveries(rig, endpoint, 1)
    with pytest.raises(NotFound):
        await rig.replays.replay_delivery(rig.store.add_app("other").id, dead.id)


async def test_a_dry_run_counts_and_replays_nothing(rig: Rig) -> None:
    app_id = rig.store.add_app().id
    dead = dead_deliveries(rig, rig.store.add_endpoint(app_id), 4)
    disabled = rig.store.add_endpoint(app_id, status=EndpointStatus.DISABLED)
    dead_deliveries(rig, disabled, 1)
    result = await rig.replays.replay_deliveries(app_id, DEAD, dry_run=True)
    assert (result.matched, result.replayed, result.replayable) == (5, 0, 4)
    assert replays_of(rig, dead) == []
    assert "replay_batch" not in rig.store.calls


async def test_a_bulk_replay_goes_batch_by_batch_until_the_cursor_ends(rig: Rig) -> None:
    endpoint = rig.store.add_endpoint(rig.store.add_app().id)
    dead = dead_deliveries(rig, endpoint, 7)  # the rig's batches hold 3: 3 + 3 + 1
    result = await rig.replays.replay_deliveries(endpoint.app_id, DEAD, dry_run=False)
    assert (result.matched, result.replayed, result.replayable) == (7, 7, 7)
    assert rig.store.calls.count("replay_batch") == 3
    assert len(replays_of(rig, dead)) == 7


async def test_a_bulk_replay_of_a_whole_number_of_batches_ends_on_an_empty_one(rig: Rig) -> None:
    endpoint = rig.store.add_endpoint(rig.store.add_app().id)
    dead_deliveries(rig, endpoint, 6)
    result = await rig.replays.replay_deliveries(endpoint.app_id, DEAD, dry_run=False)
    assert result.replayed == 6
    assert rig.store.calls.count("replay_batch") == 3


async def test_a_bulk_replay_enqueues_exactly_the_new_deliveries_as_new(rig: Rig) -> None:
    endpoint = rig.store.add_endpoint(rig.store.add_app().id)
    dead = dead_deliveries(rig, endpoint, 5)
    await rig.replays.replay_deliveries(endpoint.app_id, DEAD, dry_run=False)
    assert sorted(rig.new_deliveries.enqueued) == sorted(d.id for d in replays_of(rig, dead))
    assert rig.queue.enqueued == []


async def test_a_bulk_replay_skips_the_originals_a_replay_already_took_up(rig: Rig) -> None:
    endpoint = rig.store.add_endpoint(rig.store.add_app().id)
    first, second = dead_deliveries(rig, endpoint, 2)
    await rig.replays.replay_delivery(endpoint.app_id, first.id)
    result = await rig.replays.replay_deliveries(endpoint.app_id, DEAD, dry_run=False)
    assert (result.matched, result.replayed) == (1, 1)
    assert [rig.store.deliveries[i].replay_of for i in rig.new_deliveries.enqueued] == [second.id]


async def test_a_bulk_replay_with_include_replayed_takes_them_up_again(rig: Rig) -> None:
    endpoint = rig.store.add_endpoint(rig.store.add_app().id)
    first, _ = dead_deliveries(rig, endpoint, 2)
    await rig.replays.replay_delivery(endpoint.app_id, first.id)
    result = await rig.replays.replay_deliveries(
        endpoint.app_id, DEAD, dry_run=False, include_replayed=True
    )
    assert (result.matched, result.replayed) == (2, 2)


async def test_a_bulk_replay_that_cannot_enqueue_still_reports_what_it_replayed(
    rig: Rig,
) -> None:
    endpoint = rig.store.add_endpoint(rig.store.add_app().id)
    dead_deliveries(rig, endpoint, 4)
    rig.new_deliveries.failure = ConnectionError("redis is away")
    result = await rig.replays.replay_deliveries(endpoint.app_id, DEAD, dry_run=False)
    assert result.replayed == 4
    assert rig.store.calls.count("replay_batch") == 2  # a failed enqueue stops no batch
