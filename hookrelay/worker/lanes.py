"""Lanes: one arq worker per queue (first attempts, retries), rebuilt whenever its loop fails,
and stopped gracefully."""

from __future__ import annotations

import asyncio

import structlog
from arq import Worker

from hookrelay.settings import Settings
from hookrelay.worker.deliverer import Deliverer
from hookrelay.worker.task import worker_settings

log = structlog.get_logger(__name__)

# A lane whose loop failed (Redis down) is rebuilt after a backoff growing up to this.
MAX_RESTART_BACKOFF_S = 10.0


class LaneWorker(Worker):
    """arq's worker, minus round trips spent on its own running jobs.

    Each poll reads the ids of due jobs, and a running job stays among them until it ends;
    arq checks every id read against Redis (three round trips) before finding it already runs.
    Under load that was most of the worker's Redis traffic.
    """

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        running = self.tasks
        await super().start_jobs(
            [
                job_id
                for job_id in job_ids
                if (task := running.get(job_id.decode())) is None or task.done()
            ]
        )


def build_worker(
    settings: Settings, deliverer: Deliverer, queue_name: str, max_jobs: int
) -> Worker:
    """Return an arq worker for one lane (queue)."""
    return LaneWorker(**worker_settings(settings, deliverer, queue_name, max_jobs))


async def stop_lane(worker: Worker, main: asyncio.Task[None], grace_s: float) -> None:
    """Stop taking jobs, give in-flight deliveries `grace_s` to finish, cancel the rest, close.

    A cancelled delivery keeps its lease; when the lease expires it is sent again.
    """
    # In burst mode with no jobs left to start, arq's main loop waits for the running jobs and
    # returns by itself, between Redis calls rather than in the middle of one.
    worker.allow_pick_jobs = False
    worker.burst = True
    worker.max_burst_jobs = 0
    try:
        await asyncio.wait_for(asyncio.shield(main), grace_s)
    except TimeoutError:
        log.warning("deliveries still running after the grace period; cancelling them")
        for task in worker.tasks.values():
            task.cancel()
        main.cancel()
    except Exception:
        pass  # the lane had already failed; Lane.run logged it
    await asyncio.gather(main, *worker.tasks.values(), return_exceptions=True)
    # arq's close() awaits these tasks again and would re-raise a cancellation.
    worker.tasks.clear()
    try:
        await worker.close()
    except Exception as exc:
        log.warning("closing a lane failed", error=repr(exc))


class Lane:
    """One arq queue, worked until stopped; rebuilt whenever its loop fails."""

    def __init__(
        self, settings: Settings, deliverer: Deliverer, queue_name: str, max_jobs: int
    ) -> None:
        self.settings = settings
        self.deliverer = deliverer
        self.queue_name = queue_name
        self.max_jobs = max_jobs
        self._stopping = asyncio.Event()
        self._current: tuple[Worker, asyncio.Task[None]] | None = None

    async def run(self) -> None:
        """Work the queue until `stop`, rebuilding the arq worker after a backoff if it fails."""
        backoff = 0.5
        while not self._stopping.is_set():
            worker = build_worker(self.settings, self.deliverer, self.queue_name, self.max_jobs)
            main = asyncio.create_task(worker.async_run())
            self._current = (worker, main)
            try:
                await asyncio.shield(main)
            except asyncio.CancelledError:
                if self._stopping.is_set():
                    return
                raise
            except Exception as exc:
                log.warning(
                    "worker lane failed; restarting",
                    queue=self.queue_name,
                    error=repr(exc),
                    retry_in_s=backoff,
                )
            finally:
                if not self._stopping.is_set():
                    self._current = None
                    await stop_lane(worker, main, grace_s=0)
            if self._stopping.is_set():
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_RESTART_BACKOFF_S)

    async def stop(self, grace_s: float) -> None:
        """Stop the lane, giving its in-flight deliveries `grace_s` to finish."""
        self._stopping.set()
        if self._current is not None:
            worker, main = self._current
            await stop_lane(worker, main, grace_s)
