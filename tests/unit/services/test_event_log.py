"""The event log on the in-memory fakes: where a reader starts, and a job folded from every one
of its events, page by page."""

from __future__ import annotations

import orjson
import pytest

from hookrelay.errors import NotFound
from hookrelay.services.event_log import fold_job, log_start
from tests.fakes import FakeStore


async def test_a_reader_resuming_after_an_event_starts_where_that_event_stands() -> None:
    store = FakeStore()
    app = store.add_app()
    event = store.add_event(app.id)
    store.add_event(app.id)
    assert await log_start(store.as_events, app.id, event.id, "job_1") == event.position


async def test_a_reader_resuming_after_an_event_the_app_never_had_is_not_found() -> None:
    store = FakeStore()
    mine, theirs = store.add_app("mine"), store.add_app("theirs")
    event = store.add_event(theirs.id)
    with pytest.raises(NotFound):
        await log_start(store.as_events, mine.id, event.id, None)


async def test_a_reader_following_a_job_starts_before_its_first_event() -> None:
    store = FakeStore()
    app = store.add_app()
    store.add_event(app.id)
    first = store.add_event(app.id, "job.queued", job_id="job_1")
    assert await log_start(store.as_events, app.id, None, "job_1") == (first.tx_id, "")


async def test_a_reader_with_nothing_to_resume_starts_at_the_end() -> None:
    store = FakeStore()
    app = store.add_app()
    store.add_event(app.id)
    assert (
        await log_start(store.as_events, app.id, None, None) == await store.as_events.log_horizon()
    )


def job_event(store: FakeStore, app_id: str, event_type: str, **data: object) -> None:
    body = orjson.dumps({"type": event_type, "data": {"job_id": "job_1", **data}}).decode()
    store.add_event(app_id, event_type, job_id="job_1", body=body)


async def test_a_job_is_folded_from_all_its_events_across_pages() -> None:
    store = FakeStore()
    app = store.add_app()
    job_event(store, app.id, "job.queued")
    for percent in (10, 20, 30):
        job_event(store, app.id, "job.progress", percent=percent)
    job_event(store, app.id, "job.completed", output=1)
    job = await fold_job(store.as_events, app.id, "job_1", page_size=2)
    assert (job.state, job.event_count, job.output) == ("completed", 5, 1)
    assert store.calls.count("job_events") == 3  # 2 + 2, then a short page of 1


async def test_a_job_with_no_events_is_not_found() -> None:
    store = FakeStore()
    app = store.add_app()
    with pytest.raises(NotFound, match="no events for this job"):
        await fold_job(store.as_events, app.id, "job_1")
