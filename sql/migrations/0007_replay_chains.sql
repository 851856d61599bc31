-- Replays that are safe to repeat. A delivery with replay_of NULL is an original; every replay
-- of it, or of one of its replays, names that original. An original is recovered once one of
-- its replays succeeds: the statement that records that success writes recovered_by and
-- recovered_at on the original, so that finding what is still lost (a dead original not
-- recovered) reads only the few rows still lost, never every replay that ever succeeded.

-- Before, a replay of a replay named the replay, and bulk replay replayed dead replays too:
-- chains can be deeper than one level. Point every replay at the root of its chain. The walk
-- starts at the replays of originals and follows replays only (through the index below).
CREATE INDEX deliveries_replay_of_idx ON deliveries (replay_of, id)
    WHERE replay_of IS NOT NULL;
WITH RECURSIVE chain (id, root) AS (
    SELECT replay.id, replay.replay_of
    FROM deliveries AS replay JOIN deliveries AS original ON original.id = replay.replay_of
    WHERE replay.replay_of IS NOT NULL AND original.replay_of IS NULL
  UNION ALL
    SELECT replay.id, chain.root
    FROM chain JOIN deliveries AS replay ON replay.replay_of = chain.id
    WHERE replay.replay_of IS NOT NULL
)
UPDATE deliveries SET replay_of = chain.root
FROM chain
WHERE deliveries.id = chain.id AND deliveries.replay_of <> chain.root;

-- The first replay of an original that succeeded, and when. Written whatever the original's
-- status (a replay by id may outrun its original): the views show it only on a dead original,
-- but bulk replay never sends an original that a replay delivered. No foreign key: a replay
-- shares its original's event and endpoint, so the two are only ever deleted together.
ALTER TABLE deliveries ADD COLUMN recovered_by text, ADD COLUMN recovered_at timestamptz;
UPDATE deliveries AS original
SET recovered_by = first.id, recovered_at = first.finished_at
FROM (
    SELECT DISTINCT ON (replay_of) replay_of, id, coalesce(finished_at, updated_at) AS finished_at
    FROM deliveries
    WHERE replay_of IS NOT NULL AND status = 'succeeded'
    ORDER BY replay_of, finished_at, id
) AS first
WHERE original.id = first.replay_of;

-- Still lost: a dead original that no replay recovered. Bulk replay, recover and their dry runs
-- find them through these (by app, by endpoint), which hold only the deliveries still lost.
CREATE INDEX deliveries_lost_app_idx ON deliveries (app_id, id)
    WHERE status = 'dead' AND replay_of IS NULL AND recovered_at IS NULL;
CREATE INDEX deliveries_lost_endpoint_idx ON deliveries (endpoint_id, id)
    WHERE status = 'dead' AND replay_of IS NULL AND recovered_at IS NULL;

-- The statuses of a delivery that may still succeed: while one of its replays is in one, an
-- original is being replayed and bulk replay leaves it alone. The one place they are named:
-- the index below and replays_in_flight use this function, which the planner inlines into both
-- (so a query's condition is seen to imply the index's). Changing it means rebuilding that
-- index, in a migration.
CREATE FUNCTION delivery_in_flight(status text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT status IN ('pending', 'sending', 'retrying', 'held')
$$;

-- Replays in flight only: a few rows at any time, however many replays are kept.
CREATE INDEX deliveries_replays_in_flight_idx ON deliveries (replay_of)
    WHERE replay_of IS NOT NULL AND delivery_in_flight(status);

-- The replays of an original still in flight. A set-returning SQL function, so that the planner
-- inlines it into the query that calls it.
CREATE FUNCTION replays_in_flight(original_id text) RETURNS TABLE (id text)
LANGUAGE sql STABLE AS $$
    SELECT id FROM deliveries
    WHERE replay_of = original_id AND replay_of IS NOT NULL AND delivery_in_flight(status)
$$;

-- What the views show of an original's replays: its latest replay and, if it is dead, the
-- replay that recovered it and when. Always one row.
CREATE FUNCTION replays_of(original_id text, original_status text,
                           original_recovered_by text, original_recovered_at timestamptz)
RETURNS TABLE (replayed_by text, recovered_by text, recovered_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT (SELECT max(id) FROM deliveries WHERE replay_of = original_id),
           CASE WHEN original_status = 'dead' THEN original_recovered_by END,
           CASE WHEN original_status = 'dead' THEN original_recovered_at END
$$;
