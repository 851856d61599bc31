"""Recording an attempt is tried again on a passing database failure (the receiver has
answered: an unrecorded answer would be sent again once the lease ran out), never on a bug."""

from __future__ import annotations

import pytest

from hookrelay.delivery import record
from hookrelay.delivery.record import RECORD_TRIES, with_db_retries
from hookrelay.errors import Conflict, Contention, DependencyUnavailable


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_sleep(_: float) -> None:
        return None

    monkeypatch.setattr(record.asyncio, "sleep", no_sleep)


def failing(times: int, error: Exception) -> tuple[list[int], object]:
    calls: list[int] = []

    async def write() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error
        return "recorded"

    return calls, write


@pytest.mark.parametrize(
    "error",
    [Contention("deadlock"), DependencyUnavailable("the database is unreachable")],
    ids=["a lost deadlock", "an unreachable database"],
)
async def test_a_passing_failure_is_tried_again(error: Exception) -> None:
    calls, write = failing(RECORD_TRIES - 1, error)
    assert await with_db_retries(write) == "recorded"  # type: ignore[arg-type]
    assert len(calls) == RECORD_TRIES


async def test_a_failure_that_outlasts_every_try_is_raised() -> None:
    calls, write = failing(RECORD_TRIES, Contention("deadlock"))
    with pytest.raises(Contention):
        await with_db_retries(write)  # type: ignore[arg-type]
    assert len(calls) == RECORD_TRIES


async def test_any_other_error_is_raised_at_once() -> None:
    calls, write = failing(1, Conflict("a bug, not a passing failure"))
    with pytest.raises(Conflict):
        await with_db_retries(write)  # type: ignore[arg-type]
    assert len(calls) == 1
