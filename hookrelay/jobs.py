"""A job's current state, folded from its events in commit order.

Events can arrive out of order (a provider's workers race, a retry lands late), so the fold
never moves a job backwards: a finished job stays finished, the first terminal event wins, a
running job does not go back to queued, and progress never decreases. A pending human step
(action_required) ends only when the job finishes or reports progress beyond what it had
reached; a late job.started or an old progress report leaves it pending.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson

from hookrelay.models import Event


class JobState(StrEnum):
    """Where a job stands, as its events so far tell."""

    QUEUED = "queued"  # the state a job starts in
    RUNNING = "running"
    ACTION_REQUIRED = "action_required"  # waiting for a human
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})
# The job events that set a state, and the state each sets.
STATE_OF = {
    "job.queued": JobState.QUEUED,
    "job.started": JobState.RUNNING,
    "job.progress": JobState.RUNNING,
    "job.action_required": JobState.ACTION_REQUIRED,
    "job.completed": JobState.COMPLETED,
    "job.failed": JobState.FAILED,
    "job.cancelled": JobState.CANCELLED,
}
# The most recent events shown in a job's history (the fold itself reads them all).
HISTORY_EVENTS = 200


@dataclass
class Job:
    """A job as its events so far describe it."""

    job_id: str
    state: JobState = JobState.QUEUED
    percent: float | None = None
    message: str | None = None
    output: Any = None
    artifacts: list[Any] | None = None
    error: Any = None
    action: Any = None  # the pending human-in-the-loop step, while action_required
    created_at: datetime | None = None
    updated_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    event_count: int = 0
    last_event_id: str | None = None
    history: deque[Event] = field(default_factory=lambda: deque(maxlen=HISTORY_EVENTS))

    def apply(self, event: Event) -> None:
        """Fold one more event (in commit order) into the job."""
        self.event_count += 1
        self.last_event_id = event.id
        self.history.append(event)
        if self.created_at is None:
            self.created_at = event.created_at
        target = STATE_OF.get(event.type)
        if target is None or self.state in TERMINAL:
            return  # another type about this job, or a straggler after the end
        data: dict[str, Any] = orjson.loads(event.body)["data"]
        changed = True
        if target in TERMINAL:
            self._finish(target, data, event.created_at)
        elif target == JobState.ACTION_REQUIRED:
            self.state, self.action = target, data.get("action")
        elif target == JobState.RUNNING:
            changed = self._run(data, event.created_at)
        else:  # job.queued: the state a job starts in
            changed = False
        if changed or self.updated_at is None:
            self.updated_at = event.created_at

    def _run(self, data: dict[str, Any], at: datetime) -> bool:
        """Fold a job.started or job.progress; return whether it changed the job."""
        changed = False
        if self.started_at is None:
            self.started_at, changed = at, True
        percent = data.get("percent")  # only job.progress has one
        current = -1.0 if self.percent is None else self.percent
        advanced = isinstance(percent, int | float) and percent > current
        if isinstance(percent, int | float) and percent >= current:  # not an old report
            self.percent, changed = percent, True
            self.message = data.get("message", self.message)
            if "output" in data:
                self.output = data["output"]
        if self.state == JobState.QUEUED or (self.state == JobState.ACTION_REQUIRED and advanced):
            self.state, self.action, changed = JobState.RUNNING, None, True
        return changed

    def _finish(self, state: JobState, data: dict[str, Any], at: datetime) -> None:
        self.state, self.action, self.finished_at = state, None, at
        if state == JobState.COMPLETED:
            self.percent = 100
            self.output = data.get("output", self.output)
            self.artifacts = data.get("artifacts")
        elif state == JobState.FAILED:
            self.error = data.get("error")
