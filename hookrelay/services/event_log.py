"""An app's event log as its readers meet it: where a reader starts (the stream, the
long-poll), and a job's current state folded from all its events."""

from __future__ import annotations

from hookrelay.errors import NotFound
from hookrelay.jobs import Job
from hookrelay.models import LOG_START, LogPosition
from hookrelay.services.ports import LogStore

# A job's events are folded this many per query.
JOB_EVENTS_PAGE = 1000


async def log_start(
    events: LogStore, app_id: str, resume_after: str | None, job_id: str | None
) -> LogPosition:
    """Where a reader of an app's log starts: after the event it last saw; else, following one
    job, before that job's first event; else at the end (new events only)."""
    if resume_after is not None:
        return await events.log_position(app_id, resume_after)
    if job_id is not None:
        return await events.job_log_start(app_id, job_id)
    return await events.log_horizon()


async def fold_job(
    events: LogStore, app_id: str, job_id: str, page_size: int = JOB_EVENTS_PAGE
) -> Job:
    """A job's current state, folded from all its events in commit order."""
    job = Job(job_id)
    after = LOG_START
    while True:
        page = await events.job_events(app_id, job_id, after, page_size)
        for event in page:
            job.apply(event)
        if len(page) < page_size:
            break
        after = page[-1].position
    if job.event_count == 0:
        raise NotFound("no events for this job")
    return job
