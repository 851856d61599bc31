"""Coalescer: concurrent callers' items run together, each with its own outcome."""

from __future__ import annotations

import asyncio

import pytest

from hookrelay.coalesce import Coalescer, Outcome


class Runs:
    """A run that records each group it is given and doubles each item (a negative item is
    that item's own error); `gate` holds a run until the test lets it go."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.gate: asyncio.Event | None = None
        self.fail_whole = False

    async def __call__(self, items: list[int]) -> list[Outcome[int]]:
        self.groups.append(items)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_whole:
            raise RuntimeError("the whole run failed")
        return [ValueError(n) if n < 0 else 2 * n for n in items]


async def test_items_that_arrive_while_a_run_is_on_its_way_go_together_in_the_next() -> None:
    runs = Runs()
    runs.gate = asyncio.Event()
    together = Coalescer(runs, max_items=100)
    first = asyncio.create_task(together.submit(1))
    await asyncio.sleep(0)  # the first run starts, alone, and waits at the gate
    rest = [asyncio.create_task(together.submit(n)) for n in range(2, 6)]
    await asyncio.sleep(0)
    runs.gate.set()
    assert [await first, *[await r for r in rest]] == [2, 4, 6, 8, 10]
    assert runs.groups == [[1], [2, 3, 4, 5]]


async def test_a_run_carries_at_most_max_items() -> None:
    runs = Runs()
    together = Coalescer(runs, max_items=3)
    assert await asyncio.gather(*(together.submit(n) for n in range(7))) == [
        2 * n for n in range(7)
    ]
    assert runs.groups == [[0, 1, 2], [3, 4, 5], [6]]


async def test_an_items_own_error_reaches_only_its_caller() -> None:
    together = Coalescer(Runs(), max_items=10)
    outcomes = await asyncio.gather(
        *(together.submit(n) for n in (1, -2, 3)), return_exceptions=True
    )
    assert outcomes[0] == 2 and outcomes[2] == 6
    assert isinstance(outcomes[1], ValueError)


async def test_a_run_that_fails_fails_its_items_and_not_the_next_runs() -> None:
    runs = Runs()
    runs.fail_whole = True
    together = Coalescer(runs, max_items=10)
    with pytest.raises(RuntimeError):
        await together.submit(1)
    runs.fail_whole = False
    assert await together.submit(2) == 4


@pytest.mark.timed  # bounds of wall time: a machine stalled for 0.5 s would break them
async def test_with_a_pace_runs_under_load_wait_and_carry_more() -> None:
    runs = Runs()
    together = Coalescer(runs, max_items=100, pace_s=1.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await together.submit(1) == 2  # after a quiet spell: at once
    assert loop.time() - started < 0.5
    # The next run waits for the pace, gathering what arrives meanwhile.
    later = [asyncio.create_task(together.submit(n)) for n in (2, 3)]
    await asyncio.sleep(0.05)
    later.append(asyncio.create_task(together.submit(4)))
    assert [await t for t in later] == [4, 6, 8]
    assert loop.time() - started >= 1.0
    assert runs.groups == [[1], [2, 3, 4]]


async def test_a_full_run_does_not_wait_for_the_pace() -> None:
    runs = Runs()
    together = Coalescer(runs, max_items=2, pace_s=10.0)
    await together.submit(0)
    await asyncio.wait_for(asyncio.gather(together.submit(1), together.submit(2)), 1.0)
    assert runs.groups == [[0], [1, 2]]


async def test_a_cancelled_caller_leaves_the_others_their_results() -> None:
    runs = Runs()
    runs.gate = asyncio.Event()
    together = Coalescer(runs, max_items=10)
    cancelled = asyncio.create_task(together.submit(1))
    kept = asyncio.create_task(together.submit(2))
    while not runs.groups:  # noqa: ASYNC110 (the run, on its way, waits at the gate)
        await asyncio.sleep(0)
    cancelled.cancel()
    runs.gate.set()
    assert await kept == 4
    assert cancelled.cancelled()
    assert runs.groups == [[1, 2]]  # already on its way when its caller was cancelled


async def test_a_caller_cancelled_before_its_run_starts_is_left_out_of_it() -> None:
    runs = Runs()
    runs.gate = asyncio.Event()
    together = Coalescer(runs, max_items=10)
    first = asyncio.create_task(together.submit(1))
    await asyncio.sleep(0)  # the first run waits at the gate
    cancelled = asyncio.create_task(together.submit(2))
    kept = asyncio.create_task(together.submit(3))
    await asyncio.sleep(0)
    cancelled.cancel()
    runs.gate.set()
    assert (await first, await kept) == (2, 6)
    assert runs.groups == [[1], [3]]


async def test_a_cancelled_run_leaves_no_caller_waiting_and_the_next_submit_runs() -> None:
    runs = Runs()
    runs.gate = asyncio.Event()
    together = Coalescer(runs, max_items=10)
    waiting = asyncio.create_task(together.submit(1))
    await asyncio.sleep(0)
    running = together._running
    assert running is not None
    running.cancel()  # as a process stopping cancels every task
    with pytest.raises(asyncio.CancelledError):
        await waiting
    runs.gate.set()
    assert await together.submit(2) == 4


async def test_a_bug_in_a_run_reaches_its_callers_as_itself() -> None:
    async def wrong_count(items: list[int]) -> list[Outcome[int]]:
        return []  # one outcome short: zip(strict=True) raises

    together = Coalescer(wrong_count, max_items=10)
    with pytest.raises(ValueError):
        await together.submit(1)


async def test_a_run_cancelled_on_its_way_cancels_its_callers_and_the_waiting_ones() -> None:
    runs = Runs()
    runs.gate = asyncio.Event()
    together = Coalescer(runs, max_items=10)
    on_its_way = asyncio.create_task(together.submit(1))
    while not runs.groups:  # noqa: ASYNC110 (the run, on its way, waits at the gate)
        await asyncio.sleep(0)
    waiting = asyncio.create_task(together.submit(2))
    await asyncio.sleep(0)
    running = together._running
    assert running is not None
    running.cancel()
    for caller in (on_its_way, waiting):
        with pytest.raises(asyncio.CancelledError):
            await caller
    runs.gate.set()
    assert await together.submit(3) == 6
    assert runs.groups == [[1], [3]]
