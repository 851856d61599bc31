"""Events: ingest (at most once per Idempotency-Key), listings, and the log in commit order
that streams, long-polls and job status read (sql/queries/events.sql)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from hookrelay.errors import Conflict, NotFound
from hookrelay.ids import id_bound_at
from hookrelay.models import (
    LOG_START,
    Event,
    EventFilter,
    EventWrite,
    Idempotency,
    LogFilter,
    LogPosition,
    LogRead,
)
from hookrelay.operational import is_operational
from hookrelay.storage.db import Database, Session, build

# A page of the event log holds about this many bytes of bodies at most (and one event more).
READ_LOG_BYTES = 1024 * 1024


async def insert_with_deliveries(session: Session, events: list[Event]) -> list[str]:
    """Record events and one delivery per subscribed endpoint each, in one statement; return
    the ids of the deliveries due now."""
    due, _ = await _insert(session, events)
    return [delivery_id for delivery_id, _ in due]


# An Idempotency-Key to take: (app, stored key), the request's Idempotency, its answer.
KeyToTake = tuple[tuple[str, str], Idempotency, Any]


async def _insert(
    session: Session,
    events: list[Event],
    event_keys: list[str | None] | None = None,
    keys: list[KeyToTake] | None = None,
) -> tuple[list[tuple[str, str]], set[tuple[str, str]]]:
    """`insert_with_deliveries` for events of any apps, taking `keys` in the same statement:
    an event whose request came with a key (`event_keys`, one per event) is written only if
    its key is taken now. Each delivery due now, with its event; and the keys taken."""
    keys = keys or []
    record = await session.row(
        "insert_events_with_deliveries",
        [e.id for e in events],
        [e.app_id for e in events],
        [e.type for e in events],
        [e.job_id for e in events],
        [e.body for e in events],
        [e.created_at for e in events],
        [is_operational(e.type) for e in events],
        event_keys or [None] * len(events),
        [app_id for (app_id, _), _, _ in keys],
        [key for (_, key), _, _ in keys],
        [idempotency.request_hash for _, idempotency, _ in keys],
        [orjson.dumps(answer).decode() for _, _, answer in keys],
    )
    assert record is not None
    taken = set(zip(record["taken_apps"], record["taken_keys"], strict=True))
    return list(zip(record["ids"], record["event_ids"], strict=True)), taken


def _answers(
    writes: list[EventWrite], recorded: list[int], due: list[tuple[str, str]]
) -> list[list[str] | None]:
    """For each request, the ids of its deliveries due now (from `due`: (delivery, event)), or
    None if it was not recorded."""
    by_event = {event.id: n for n in recorded for event in writes[n].events}
    answers: list[list[str] | None] = [None] * len(writes)
    for n in recorded:
        answers[n] = []
    for delivery_id, event_id in due:
        delivery_ids = answers[by_event[event_id]]
        assert delivery_ids is not None
        delivery_ids.append(delivery_id)
    return answers


def id_bound_of(prefix: str, moment: datetime | None) -> str | None:
    """The smallest id with `prefix` made at or after `moment` (ids sort by time), or None."""
    return None if moment is None else id_bound_at(prefix, moment)


class Events:
    """An app's events, and its log: events in the order their transactions committed."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, event: Event) -> list[str]:
        """Record an event and its deliveries atomically; return the ids of those due now."""
        async with self.db.session() as session:
            return await insert_with_deliveries(session, [event])

    async def insert_example(self, event: Event, endpoint_id: str) -> tuple[str, str | None]:
        """Record an example event with one delivery, to `endpoint_id` alone, if that endpoint
        is active. Returns the endpoint's status and the delivery's id (None, and nothing
        written, unless the endpoint is active); NotFound for no such endpoint."""
        record = await self.db.row(
            "insert_example_event",
            event.id,
            event.app_id,
            event.type,
            event.job_id,
            event.body,
            event.created_at,
            endpoint_id,
        )
        if record is None:
            raise NotFound("no such endpoint")
        return record["status"], record["delivery_id"]

    async def insert_together(self, writes: list[EventWrite]) -> list[list[str] | None]:
        """Record the events of many requests (of any apps) and their deliveries in one
        statement, with the Idempotency-Keys they came with; for each request, the ids of its
        deliveries due now, or None when its key was taken before (or by an earlier request
        here): `insert_once` then gives that request its answer."""
        keyed: dict[tuple[str, str], KeyToTake] = {}
        included: list[int] = []  # the requests whose events go into the statement
        events: list[Event] = []
        event_keys: list[str | None] = []
        for n, write in enumerate(writes):
            key = None
            if write.idempotency is not None:
                key = (write.events[0].app_id, write.idempotency.stored_key)
                if key in keyed:
                    continue  # an earlier request here has it: this one is answered later
                keyed[key] = (key, write.idempotency, write.answer)
            included.append(n)
            events += write.events
            event_keys += [None if key is None else key[1]] * len(write.events)
        # One statement, atomic by itself: no transaction around it, which would cost two more
        # round trips. It waits for no lock for long (an impatient session): a lock held on one
        # app (its deletion under way) would hold up every app's requests in it. Past
        # IMPATIENT_LOCK_WAIT_S the group fails (Contention), and its requests are written one
        # by one, each waiting for what it needs. Keys are taken in one order by every process:
        # two groups that hold the same keys never wait for each other in a circle.
        async with self.db.session(impatient=True) as session:
            due, taken = await _insert(
                session, events, event_keys, [keyed[key] for key in sorted(keyed)]
            )
        recorded = [
            n
            for n in included
            if (idempotency := writes[n].idempotency) is None
            or (writes[n].events[0].app_id, idempotency.stored_key) in taken
        ]
        return _answers(writes, recorded, due)

    async def insert_once(
        self, events: list[Event], idempotency: Idempotency | None, answer: Any
    ) -> tuple[Any, list[str]]:
        """Record events and their deliveries in one statement, at most once per
        Idempotency-Key (taken in the same statement): a key seen before returns its first
        answer and records nothing (a different request under the same key is a Conflict).
        Returns the answer and the ids of the deliveries due now."""
        if idempotency is None:
            async with self.db.session() as session:
                return answer, await insert_with_deliveries(session, events)
        key = (events[0].app_id, idempotency.stored_key)
        while True:
            async with self.db.session() as session:
                due, taken = await _insert(
                    session, events, [key[1]] * len(events), [(key, idempotency, answer)]
                )
                if taken:
                    return answer, [delivery_id for delivery_id, _ in due]
                first = await session.row("get_idempotency_key", *key, idempotency.ttl_s)
                if first is None:
                    continue  # its request failed and rolled back meanwhile: try again
                if not first["live"]:
                    await session.execute("delete_idempotency_key", *key)
                    continue
            if first["request_hash"] != idempotency.request_hash:
                raise Conflict(
                    "this Idempotency-Key was used with a different request",
                    {"idempotency_key": idempotency.key},
                )
            return orjson.loads(first["response"]), []

    async def get(self, app_id: str, event_id: str) -> Event:
        """One event of an app."""
        return await self.db.one(Event, "get_event", app_id, event_id, missing="no such event")

    # The event log in commit order (streams, long-polls, job status)

    async def read_log(
        self, app_id: str, after: LogPosition, filters: LogFilter, limit: int
    ) -> LogRead:
        """Up to `limit` events after `after` in commit order. The position returned covers
        every matching event before it, so reading on from it never skips one."""
        records = await self.db.rows(
            "read_log",
            app_id,
            *after,
            limit,
            READ_LOG_BYTES,
            None if filters.types is None else list(filters.types),
            filters.job_id,
            # A job's events come through the job's index only in a plan made for that job;
            # reads of the whole log (the live tails' own) keep their cached plan.
            custom_plan=filters.job_id is not None,
        )
        events = [build(Event, r) for r in records if r["id"] is not None]
        # A page full by count or by bytes: more may follow. Otherwise every match older than
        # the horizon has been read.
        full = bool(events) and (len(events) == limit or len(events) < records[0]["rows_read"])
        position = events[-1].position if full else max(after, (records[0]["horizon"], ""))
        return LogRead(events, position, records[0]["held_back"], more=full)

    async def log_horizon(self) -> LogPosition:
        """The position before every event not yet readable: "now" in the log."""
        return (await self.db.value("log_horizon"), "")

    async def log_position(self, app_id: str, event_id: str) -> LogPosition:
        """Where a reader that has seen `event_id` goes on from: just after it, or, if a
        transaction older than it is still open, before that transaction's events (a reader
        never passes what may still commit). An event older than every one kept (pruned) means
        the start; an id this app never had is NotFound."""
        record = await self.db.row("event_log_position", app_id, event_id)
        assert record is not None
        if record["id"] is not None:
            return min((record["tx_id"], record["id"]), (record["horizon"], ""))
        if record["oldest_id"] is None or event_id < record["oldest_id"]:
            return LOG_START
        raise NotFound("no such event in this app's log")

    async def job_log_start(self, app_id: str, job_id: str) -> LogPosition:
        """The position just before a job's first event (or "now" for a job with none yet)."""
        return (await self.db.value("job_log_start", app_id, job_id), "")

    async def job_events(
        self, app_id: str, job_id: str, after: LogPosition, limit: int
    ) -> list[Event]:
        """A job's events in commit order, after `after`."""
        return await self.db.all(Event, "job_events", app_id, job_id, *after, limit)

    # Last in the class: below this method, `list` in an annotation would name it.
    async def list(
        self, app_id: str, filters: EventFilter, before: str | None, limit: int
    ) -> list[Event]:
        """An app's events, newest first, before the cursor `before`."""
        return await self.db.all(
            Event,
            "list_events",
            app_id,
            limit,
            before,
            filters.type,
            filters.job_id,
            id_bound_of("evt_", filters.since),
            id_bound_of("evt_", filters.until),
            custom_plan=True,
        )
