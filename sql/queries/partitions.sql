-- The named queries of hookrelay/storage/partitions.py, the only module that runs them:
-- the event log's time partitions, read from the catalog.
-- Each is `-- name --`, a one-line description, then the SQL.

-- is_partitioned --
-- Whether the table $1 is partitioned (the log is, once migration 0012 ran).
SELECT EXISTS (
    SELECT FROM pg_class WHERE oid = to_regclass($1) AND relkind = 'p'
);

-- log_partitions --
-- The partitions of the table $1: name, bound as Postgres writes it, and whether a concurrent
-- detach of it was interrupted.
SELECT child.relname::text AS name, pg_get_expr(child.relpartbound, child.oid) AS bound,
       inherits.inhdetachpending AS detaching
FROM pg_inherits AS inherits
JOIN pg_class AS child ON child.oid = inherits.inhrelid
WHERE inherits.inhparent = $1::text::regclass;

-- deliveries_name_events_in --
-- Whether a delivery that is kept names an event with an id in [$1, $2): one made at or after
-- $3 (within the retention: a replay made after the event's partition expired keeps that
-- partition), or one not finished yet, whatever its age (its next attempt needs the event). A
-- finished delivery older than the retention keeps nothing: it is no longer served, and its
-- event's partition would otherwise wait for the next interval's, where an event's first
-- deliveries may be.
SELECT EXISTS (
    SELECT FROM deliveries
    WHERE event_id >= $1 AND event_id < $2
      AND (id >= $3 OR status NOT IN ('succeeded', 'dead', 'cancelled'))
);
