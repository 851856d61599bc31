"""Folding a job's events into its state: every state, and out-of-order arrival."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hookrelay.events import build_event
from hookrelay.jobs import HISTORY_EVENTS, Job

START = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def fold(*steps: tuple[str, dict[str, Any]]) -> Job:
    job = Job("j1")
    for n, (event_type, data) in enumerate(steps):
        job.apply(
            build_event(
                "app_1", event_type, {"job_id": "j1", **data}, "j1", START + timedelta(seconds=n)
            )
        )
    return job


QUEUED = ("job.queued", {})
STARTED = ("job.started", {})
ACTION = ("job.action_required", {"action": {"kind": "approval", "message": "Approve?"}})


def progress(percent: float, message: str = "") -> tuple[str, dict[str, Any]]:
    return ("job.progress", {"percent": percent, "message": message or f"at {percent}"})


def test_a_queued_job() -> None:
    job = fold(QUEUED)
    assert (job.state, job.percent, job.started_at, job.created_at) == ("queued", None, None, START)


def test_a_running_job_reports_its_latest_progress() -> None:
    job = fold(QUEUED, STARTED, progress(20), progress(55, "step 11/20"))
    assert job.state == "running"
    assert (job.percent, job.message) == (55, "step 11/20")
    assert job.started_at == START + timedelta(seconds=1)
    assert job.updated_at == START + timedelta(seconds=3)


def test_progress_without_a_start_means_running() -> None:
    assert fold(QUEUED, progress(5)).state == "running"


def test_a_job_waiting_for_a_human_shows_the_action_until_work_resumes() -> None:
    job = fold(QUEUED, STARTED, progress(40), ACTION)
    assert job.state == "action_required"
    assert job.action == {"kind": "approval", "message": "Approve?"}
    resumed = fold(QUEUED, STARTED, progress(40), ACTION, progress(45))
    assert (resumed.state, resumed.action) == ("running", None)


def test_a_late_progress_from_before_the_action_leaves_it_pending() -> None:
    job = fold(QUEUED, STARTED, progress(40), ACTION, progress(30))
    assert (job.state, job.percent) == ("action_required", 40)


@pytest.mark.parametrize("late", [STARTED, progress(40, "same percent")])
def test_a_late_start_or_a_report_without_progress_leaves_the_action_pending(
    late: tuple[str, dict[str, Any]],
) -> None:
    job = fold(QUEUED, STARTED, progress(40), ACTION, late)
    assert job.state == "action_required"
    assert job.action is not None


def test_a_new_message_at_the_same_percent_is_shown() -> None:
    job = fold(STARTED, progress(0, "loading the model"), progress(0, "warming up"))
    assert (job.percent, job.message) == (0, "warming up")


def test_events_that_change_nothing_leave_updated_at_alone() -> None:
    job = fold(STARTED, progress(10), QUEUED, STARTED, progress(5))
    assert job.updated_at == START + timedelta(seconds=1)


def test_a_completed_job_has_its_output_and_artifacts() -> None:
    artifact = {"url": "https://cdn.example.com/a.png", "content_type": "image/png", "size": 9}
    job = fold(
        QUEUED,
        STARTED,
        progress(90),
        ("job.completed", {"output": {"n": 1}, "artifacts": [artifact]}),
    )
    assert (job.state, job.percent, job.output, job.artifacts) == (
        "completed",
        100,
        {"n": 1},
        [artifact],
    )
    assert job.finished_at == START + timedelta(seconds=3)


def test_a_failed_job_has_its_error() -> None:
    error = {"code": "out_of_memory", "message": "the model did not fit"}
    job = fold(QUEUED, STARTED, ("job.failed", {"error": error}))
    assert (job.state, job.error) == ("failed", error)
    assert job.finished_at is not None


def test_a_cancelled_job() -> None:
    job = fold(QUEUED, ACTION, ("job.cancelled", {}))
    assert (job.state, job.action) == ("cancelled", None)


@pytest.mark.parametrize(
    "late",
    [
        STARTED,
        progress(99),
        ACTION,
        QUEUED,
        ("job.failed", {"error": {"code": "x", "message": ""}}),
    ],
)
def test_nothing_arriving_after_the_end_moves_a_finished_job(
    late: tuple[str, dict[str, Any]],
) -> None:
    job = fold(QUEUED, STARTED, ("job.completed", {"output": "done"}), late)
    assert (job.state, job.percent, job.output, job.error) == ("completed", 100, "done", None)
    assert job.updated_at == START + timedelta(seconds=2)
    assert job.event_count == 4  # the straggler is still in the history
    assert [e.type for e in job.history][-1] == late[0]


def test_a_queued_event_arriving_after_the_start_does_not_move_the_job_back() -> None:
    assert fold(STARTED, progress(10), QUEUED).state == "running"


def test_progress_arriving_out_of_order_never_goes_back() -> None:
    job = fold(STARTED, progress(70, "late step"), progress(30, "early step"))
    assert (job.percent, job.message) == (70, "late step")


def test_partial_output_in_progress_is_shown_until_the_final_output() -> None:
    job = fold(STARTED, ("job.progress", {"percent": 50, "output": "Once upon"}))
    assert job.output == "Once upon"


def test_other_event_types_about_the_job_are_history_only() -> None:
    job = fold(QUEUED, ("image.ready", {"n": 1}))
    assert (job.state, job.event_count, job.updated_at) == ("queued", 2, START)


def test_the_history_keeps_the_latest_events() -> None:
    job = fold(STARTED, *(progress(n / 10) for n in range(HISTORY_EVENTS + 10)))
    assert job.event_count == HISTORY_EVENTS + 11
    assert len(job.history) == HISTORY_EVENTS
    assert job.last_event_id == job.history[-1].id
