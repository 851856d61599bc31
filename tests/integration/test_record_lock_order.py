"""Recording a replay's success and recording its original take their rows in one order, so the
two never deadlock (the replay writes its original before the endpoint, as the original does)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg

from hookrelay.storage.sql import queries

SEED = """
INSERT INTO apps (id, name) VALUES ('app_1', 'acme');
-- consecutive_dead 1: a success writes the endpoint row (its run of failures ends).
INSERT INTO endpoints (id, app_id, url, description, signing, secret_ciphertext, secret_key_id,
                       headers, consecutive_dead)
VALUES ('ep_1', 'app_1', 'http://127.0.0.1:9/hook', '', 'hmac', '\\x00', 'k', '{}', 1);
INSERT INTO events (id, app_id, type, body, created_at)
VALUES ('evt_000000000001', 'app_1', 'image.ready', '{}', now());
INSERT INTO deliveries (id, app_id, event_id, endpoint_id, status, attempt_count, replay_of)
VALUES ('dlv_000000000001', 'app_1', 'evt_000000000001', 'ep_1', 'sending', 1, NULL),
       ('dlv_000000000002', 'app_1', 'evt_000000000001', 'ep_1', 'sending', 1, 'dlv_000000000001');
"""


async def test_a_replay_succeeding_while_its_original_is_recorded_does_not_deadlock(
    db_url: str,
) -> None:
    original, replay = await asyncpg.connect(db_url), await asyncpg.connect(db_url)
    try:
        await original.execute(SEED)
        for connection in (original, replay):
            await connection.execute("SET deadlock_timeout = '100ms'")
        recording = original.transaction()
        await recording.start()
        # Recording the original takes its row, then its endpoint's.
        await original.execute("SELECT FROM deliveries WHERE id = 'dlv_000000000001' FOR UPDATE")
        success = asyncio.create_task(
            replay.fetchrow(
                queries()["record_attempt"],
                "dlv_000000000002",
                1,
                datetime.now(UTC),
                5,
                200,
                None,
                None,
                None,
                None,
                "succeeded",
                None,
                True,
                False,
                20,
                432_000.0,
                "dlv_000000000001",  # the original it replays
            )
        )
        await asyncio.sleep(0.3)  # the replay's statement now waits for the original's row
        await original.execute("UPDATE endpoints SET updated_at = now() WHERE id = 'ep_1'")
        await recording.commit()
        recorded = await asyncio.wait_for(success, 5)
        assert recorded is not None and recorded["status"] == "succeeded"
        marked = await original.fetchval(
            "SELECT recovered_by FROM deliveries WHERE id = 'dlv_000000000001'"
        )
        assert marked == "dlv_000000000002"
    finally:
        await original.close()
        await replay.close()
