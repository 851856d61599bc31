-- Replays that are safe to repeat. A delivery with replay_of NULL is an original; every replay
-- of it, or of one of its replays, names that original. A dead original is still lost until one
-- of its replays succeeds (it is then recovered); while a replay of it has not finished, it is
-- being replayed. Both are read from the replays themselves, never stored twice: the row that
-- records a replay's success is the record that the original was recovered.

-- Replays of one original, for what they tell of it (and for ON DELETE SET NULL of replay_of,
-- which scanned the whole table for each delivery deleted). Only replays have entries.
CREATE INDEX deliveries_replay_of_idx ON deliveries (replay_of, status)
    WHERE replay_of IS NOT NULL;

-- The replays of an original that have succeeded or may still succeed (not dead): while there
-- is one, a bulk replay leaves the original alone. A set-returning SQL function, so that the
-- planner inlines it into the query that calls it.
CREATE FUNCTION live_replays(original_id text) RETURNS TABLE (id text, status text)
LANGUAGE sql STABLE AS $$
    SELECT id, status FROM deliveries
    WHERE replay_of = original_id AND status IN ('pending', 'sending', 'retrying', 'held',
                                                 'succeeded')
$$;

-- What the replays of an original say of it: its latest replay and, if it was dead, the first
-- replay that succeeded and when (it was recovered). Always one row.
CREATE FUNCTION replays_of(original_id text, original_status text)
RETURNS TABLE (replayed_by text, recovered_by text, recovered_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT max(id),
           CASE WHEN original_status = 'dead' THEN
               (array_agg(id ORDER BY finished_at, id) FILTER (WHERE status = 'succeeded'))[1]
           END,
           CASE WHEN original_status = 'dead' THEN
               min(finished_at) FILTER (WHERE status = 'succeeded')
           END
    FROM deliveries
    WHERE replay_of = original_id
$$;
