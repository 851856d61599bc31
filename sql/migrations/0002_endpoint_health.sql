-- Endpoint health, for disabling endpoints that keep failing.

-- When the current run of failed attempts began (NULL after a success).
ALTER TABLE endpoints ADD COLUMN failing_since timestamptz;
-- Deliveries dead-lettered in a row since the last success.
ALTER TABLE endpoints ADD COLUMN consecutive_dead integer NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN disabled_at timestamptz;

-- The sweeper's scan of work that is due.
DROP INDEX deliveries_due_idx;
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at, id)
    WHERE status IN ('pending', 'retrying');
