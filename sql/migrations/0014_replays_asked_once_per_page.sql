-- What the replays say of a listing's deliveries is asked once per page, not once per row.
-- last_replay (0013) ran for each row, and its plan reached every partition newer than the
-- row, each pruned partition and each partition read costing the executor's start-up: a page a
-- day deep in two days of hourly partitions took 6 ms of such lookups, its own scan 0.1 ms.
-- Writing the newest replay on the original instead doubled what a bulk replay costs (one more
-- update of each original, through all its indexes), so the replays are still looked up.

-- The newest replay of each of `originals`: one scan of the replay index per partition that can
-- hold one, that is, not older than the oldest original (a replay is made after its original).
-- Planned once per connection, like last_replay; the partitions are pruned when the plan starts,
-- by the bound computed first.
CREATE FUNCTION newest_replays(originals text[])
RETURNS TABLE (original_id text, replay_id text)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    oldest text := left((SELECT min(o) FROM unnest(originals) AS o), 16);
BEGIN
    RETURN QUERY
    SELECT d.replay_of, max(d.id) FROM deliveries AS d
    WHERE d.replay_of = ANY (originals) AND d.replay_of IS NOT NULL AND d.id >= oldest
    GROUP BY d.replay_of;
END
$$;

-- What a delivery's replays say of it, from its newest replay (newest_replays) and its own
-- columns: the first replay that succeeded is shown on a dead original only. A new name:
-- replays_of (and last_replay) stay for processes still running the queries of before until
-- they restart (migrate, then restart); a later migration drops them.
CREATE FUNCTION replay_state(status text, newest_replay text, first_success text,
                             first_success_at timestamptz)
RETURNS TABLE (replayed_by text, recovered_by text, recovered_at timestamptz)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT newest_replay,
           CASE WHEN status = 'dead' THEN first_success END,
           CASE WHEN status = 'dead' THEN first_success_at END
$$;
