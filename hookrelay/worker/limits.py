"""Per-endpoint limits: concurrency within this worker process, and a rate across all workers
(its slots are kept in Redis, see hookrelay.broker.rate_limits)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
import math
import sys
from collections.abc import AsyncIterator
from typing import NamedTuple

from hookrelay.broker import RateSlots


class _Deadline(NamedTuple):
    """When a waiter next asks itself whether to give up (the heap's order), and its terms."""

    at: float
    arrival: int  # orders waiters with the same deadline
    waiter: asyncio.Future[bool]
    stall_s: float  # it gives up once no slot came free for this long
    last: float  # and at this moment in any case
    since: float  # when it came
    ahead: int  # how many waited before it then
    freed_before: int  # how many slots had come free before it came


class _Gate:
    """One endpoint's slots in this process, and the deliveries waiting for one.

    A burst to one endpoint queues hundreds of deliveries here; each waits on a bare future,
    and the gate keeps one timer for the earliest deadline, not a timer (or task) per waiter.
    Slots go to waiters in arrival order; deadlines are kept in a heap beside them. A waiter
    that is done (granted, expired or cancelled) is skipped wherever it is met later.
    """

    __slots__ = (
        "deadlines",
        "free",
        "freed",
        "freed_at",
        "timer",
        "timer_at",
        "users",
        "waiters",
    )

    def __init__(self, slots: int) -> None:
        self.free = slots
        self.users = 0  # deliveries that hold or await a slot: an unused gate is dropped
        self.waiters: collections.deque[asyncio.Future[bool]] = collections.deque()
        self.deadlines: list[_Deadline] = []
        self.freed = 0  # slots that came free, ever
        self.freed_at = -math.inf  # when one last did
        # uvloop's timer handles cannot say when they fire, so the gate remembers.
        self.timer: asyncio.Handle | None = None
        self.timer_at = math.inf


class EndpointLimits:
    """Decides whether a delivery to an endpoint may start now."""

    def __init__(self, rate_slots: RateSlots, concurrency: int) -> None:
        self._rate_slots = rate_slots
        self._concurrency = concurrency
        self._slots: dict[str, _Gate] = {}
        self._arrivals = itertools.count()  # orders waiters with the same deadline
        self._stopping = False

    async def start(self, endpoint_id: str, wait_s: float, at_most_s: float | None = None) -> bool:
        """Take one of the endpoint's concurrency slots in this process, waiting while the
        endpoint keeps freeing them fast enough: `wait_s` first, then on while one came free in
        the last `wait_s` and, at the pace they came free, this delivery's turn comes within
        `at_most_s` of its arrival (by default, and at least, `wait_s`). A fast endpoint frees
        one within milliseconds, and a backlog queued for it (a bulk replay) waits its turn;
        a slow one's backlog is not waited for, beyond the few that its pace serves in time."""
        gate = self._slots.get(endpoint_id)
        if gate is None:
            gate = self._slots[endpoint_id] = _Gate(self._concurrency)
        gate.users += 1
        if gate.free and not gate.waiters:
            gate.free -= 1
            return True
        if self._stopping:
            self._leave(endpoint_id, gate)
            return False
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        try:
            now = loop.time()
            last = now + max(wait_s, at_most_s or 0.0)
            deadline = _Deadline(
                now + wait_s,
                next(self._arrivals),
                waiter,
                wait_s,
                last,
                now,
                len(gate.waiters),  # (those done but not yet dropped too: it may give up early)
                gate.freed,
            )
            gate.waiters.append(waiter)
            heapq.heappush(gate.deadlines, deadline)
            if deadline.at < gate.timer_at:
                self._arm(gate, deadline.at)
            granted = await waiter
        except BaseException:  # cancelled: a slot granted meanwhile goes to the next in line
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self._pass_on(gate)
            waiter.cancel()  # (if still waiting) so that nothing hands it a slot later
            self._leave(endpoint_id, gate)
            raise
        if not granted:
            self._leave(endpoint_id, gate)
        return granted

    def finish(self, endpoint_id: str) -> None:
        """Give back a slot taken by `start`."""
        gate = self._slots[endpoint_id]
        self._pass_on(gate)
        self._leave(endpoint_id, gate)

    def stop_waiting(self) -> None:
        """The process is stopping: every delivery waiting for a slot gives up now (it is put
        off, not sent), and from now on none waits."""
        self._stopping = True
        for gate in self._slots.values():
            for waiter in gate.waiters:
                if not waiter.done():
                    waiter.set_result(False)

    def _pass_on(self, gate: _Gate) -> None:
        """A slot came free: the first delivery still waiting takes it, else it is free."""
        gate.freed += 1
        gate.freed_at = asyncio.get_running_loop().time()
        while gate.waiters:
            waiter = gate.waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)
                return
        gate.free += 1

    def _arm(self, gate: _Gate, at: float) -> None:
        if gate.timer is not None:
            gate.timer.cancel()
        gate.timer = asyncio.get_running_loop().call_at(at, self._expire, gate)
        gate.timer_at = at

    def _expire(self, gate: _Gate) -> None:
        """Waiters at their deadline give up (they are put off) unless the endpoint keeps up
        for them (`_keeps_up`); the others wait on, to the end of the stall that would make
        them give up. The timer moves on to the earliest deadline left."""
        gate.timer, gate.timer_at = None, math.inf
        now = asyncio.get_running_loop().time()
        deadlines = gate.deadlines
        waiting_on = []
        while deadlines and (deadlines[0].waiter.done() or deadlines[0].at <= now):
            deadline = heapq.heappop(deadlines)
            if deadline.waiter.done():
                continue
            if _keeps_up(gate, deadline, now):
                at = min(deadline.last, gate.freed_at + deadline.stall_s)
                waiting_on.append(deadline._replace(at=at))
            else:
                deadline.waiter.set_result(False)
        for deadline in waiting_on:
            heapq.heappush(deadlines, deadline)
        while gate.waiters and gate.waiters[0].done():  # the expired ones lead the queue
            gate.waiters.popleft()
        if deadlines:
            self._arm(gate, deadlines[0].at)

    def _leave(self, endpoint_id: str, gate: _Gate) -> None:
        gate.users -= 1
        if gate.users == 0 and self._slots.get(endpoint_id) is gate:
            del self._slots[endpoint_id]
            if gate.timer is not None:
                gate.timer.cancel()

    async def reserve_rate_slot(self, endpoint_id: str, per_second: int) -> float:
        """Reserve the endpoint's next start slot, across all workers; return the seconds until
        it (0: now)."""
        return await self._rate_slots.reserve(endpoint_id, per_second)


def _keeps_up(gate: _Gate, deadline: _Deadline, now: float) -> bool:
    """Whether a waiter should wait on: before its last moment, a slot came free within its
    stall, and at the pace slots came free since it came, those still ahead of it are served
    before its last moment (a slow endpoint serves a few of its backlog in time, not all)."""
    if now >= deadline.last or now - gate.freed_at >= deadline.stall_s:
        return False
    served = gate.freed - deadline.freed_before
    still_ahead = deadline.ahead - served
    if still_ahead <= 0:
        return True
    per_s = served / max(now - deadline.since, 1e-9)
    return per_s > 0 and now + still_ahead / per_s <= deadline.last


class SlotsBusy(Exception):
    """No slots came free in time."""


class Slots:
    """A semaphore that takes several units at once, so that a batch never holds part of what
    it needs while waiting for the rest (which could deadlock batches against each other).
    Waiters are served in order (a big batch is not overtaken forever by small ones), and
    units are given back synchronously, so a cancellation can never lose them."""

    def __init__(self, total: int) -> None:
        self._free = total
        self._total = total
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    @contextlib.asynccontextmanager
    async def take(self, wanted: int, timeout_s: float) -> AsyncIterator[None]:
        """Hold `wanted` units (at most all of them); raise SlotsBusy after `timeout_s`."""
        wanted = min(wanted, self._total)
        if self._waiters or self._free < wanted:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append((wanted, waiter))
            try:
                await asyncio.wait_for(asyncio.shield(waiter), timeout_s)
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._release(wanted)  # granted just as we gave up: give it back
                else:
                    waiter.cancel()
                    self._waiters = collections.deque(
                        w for w in self._waiters if w[1] is not waiter
                    )
                    self._wake()
                if isinstance(sys.exc_info()[1], TimeoutError):
                    raise SlotsBusy from None
                raise
        else:
            self._free -= wanted
        try:
            yield
        finally:
            self._release(wanted)

    def _release(self, count: int) -> None:
        self._free += count
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._waiters[0][0] <= self._free:
            wanted, waiter = self._waiters.popleft()
            if not waiter.done():
                self._free -= wanted
                waiter.set_result(None)
