"""Deliveries listed and counted for a bulk replay by their event's type or job: the event is read
only when such a filter is given, and then it decides."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from hookrelay.models import DeliveryFilter
from hookrelay.storage import Storage

SEED = """
INSERT INTO apps (id, name) VALUES ('app_1', 'filters');
INSERT INTO endpoints (id, app_id, url, description, signing, secret_ciphertext,
                       secret_key_id, headers)
VALUES ('ep_1', 'app_1', 'https://example.com/hook', '', 'hmac', '\\x00', 'k', '{}');
-- Events 1..30: a third job.started of job j1, a third job.started of j2, a third image.ready.
INSERT INTO events (id, app_id, type, job_id, body, created_at)
SELECT 'evt_' || lpad(n::text, 12, '0'), 'app_1',
       CASE WHEN n % 3 = 0 THEN 'image.ready' ELSE 'job.started' END,
       CASE n % 3 WHEN 1 THEN 'j1' WHEN 2 THEN 'j2' END, '{}', now()
FROM generate_series(1, 30) AS n;
INSERT INTO deliveries (id, app_id, event_id, endpoint_id, status)
SELECT 'dlv_' || lpad(n::text, 12, '0'), 'app_1', 'evt_' || lpad(n::text, 12, '0'), 'ep_1', 'dead'
FROM generate_series(1, 30) AS n;
"""


@pytest.fixture
async def storage(db_url: str) -> AsyncIterator[Storage]:
    connection = await asyncpg.connect(db_url)
    try:
        await connection.execute(SEED)
    finally:
        await connection.close()
    storage = await Storage.open(db_url, max_size=2)
    try:
        yield storage
    finally:
        await storage.close()


@pytest.mark.parametrize(
    ("filters", "numbers"),
    [
        (DeliveryFilter(), range(1, 31)),
        (DeliveryFilter(event_type="image.ready"), range(3, 31, 3)),
        (DeliveryFilter(job_id="j2"), range(2, 31, 3)),
        (DeliveryFilter(event_type="job.started", job_id="j1"), range(1, 31, 3)),
        (DeliveryFilter(event_type="image.ready", job_id="j1"), []),
    ],
)
async def test_listing_and_counting_by_the_event_match_its_type_and_job(
    storage: Storage, filters: DeliveryFilter, numbers: range
) -> None:
    listed = await storage.deliveries.list("app_1", filters, None, 100)
    assert [d.id for d in listed] == [f"dlv_{n:012d}" for n in reversed(numbers)]
    assert all(
        d.event_type == ("image.ready" if int(d.id[4:]) % 3 == 0 else "job.started") for d in listed
    )
    assert (await storage.deliveries.count("app_1", filters, False)).matched == len(numbers)
