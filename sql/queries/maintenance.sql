-- The named queries of hookrelay/storage/maintenance.py, the only module that runs them:
-- upkeep: sweeps, retention, re-encryption, lag.
-- Each is `-- name --`, a one-line description, then the SQL.

-- ping --
-- Check that the database answers.
SELECT 1;

-- plan_once_per_connection --
-- For the rest of this transaction, let Postgres keep one plan for all calls of a statement
-- (its default mode). The worker's connections plan each call (they address the log by id);
-- a sweep's statements read every partition whatever their arguments, and planning them each
-- time cost 60 to 70 ms of every sweep (every 2 s) at 52 partitions, under load. A connection
-- keeps its plan once it has run five sweeps: when the worker is idle the pool hands each sweep
-- the connection used last; under load sweeps land on many connections and still plan.
SET LOCAL plan_cache_mode = auto;

-- take_sweep_turn --
-- Start a sweep if none began within the interval ($1 seconds); the row stays locked until the
-- transaction ends, so one sweep runs at a time and one per interval.
UPDATE sweeper SET swept_at = now()
WHERE id = 1 AND swept_at <= now() - make_interval(secs => $1)
RETURNING swept_at;

-- due_deliveries --
-- Deliveries overdue by $1 seconds that may have no job (Redis lost it), after a cursor
-- ($2, $3: next_attempt_at and id), so a backlog is scanned page by page.
SELECT id, attempt_count, next_attempt_at FROM deliveries
WHERE status IN ('pending', 'retrying') AND next_attempt_at <= now() - make_interval(secs => $1)
  AND (next_attempt_at, id) > ($2, $3)
ORDER BY next_attempt_at, id
LIMIT $4;

-- expired_leases --
-- Deliveries whose worker stopped before it recorded the attempt.
SELECT id, attempt_count FROM deliveries
WHERE status = 'sending' AND lease_until < now()
ORDER BY lease_until
LIMIT $1;

-- release_stale_holds --
-- Held deliveries whose endpoint is active again (an ingest or claim that raced a resume).
UPDATE deliveries AS d
SET status = 'pending', next_attempt_at = now(), updated_at = now()
FROM (
    SELECT held.id FROM deliveries AS held
    JOIN endpoints AS endpoint ON endpoint.id = held.endpoint_id
    WHERE held.status = 'held' AND endpoint.status = 'active'
    LIMIT $1
) AS stale
WHERE d.id = stale.id AND d.status = 'held'
RETURNING d.id, d.attempt_count;

-- take_retention_turn --
-- Start a pruning pass if none began within $1 seconds (one pass at a time, across workers).
UPDATE retention SET pruned_at = now()
WHERE id = 1 AND pruned_at <= now() - make_interval(secs => $1)
RETURNING pruned_at;

-- prune_idempotency_keys --
-- Delete up to $2 Idempotency-Keys older than $1 seconds.
DELETE FROM idempotency_keys
WHERE (app_id, key) IN (
    SELECT app_id, key FROM idempotency_keys
    WHERE created_at < now() - make_interval(secs => $1)
    LIMIT $2
);

-- endpoints_sealed_with_other_keys --
-- Endpoints whose secret (or rotated-out secret) is encrypted with a key other than $1.
SELECT id, secret_ciphertext, secret_key_id, previous_secret_ciphertext, previous_secret_key_id
FROM endpoints
WHERE secret_key_id <> $1 OR previous_secret_key_id <> $1
ORDER BY id
LIMIT $2;

-- reseal_endpoint_secrets --
-- Store an endpoint's secrets encrypted anew, unless they changed since they were read.
UPDATE endpoints
SET secret_ciphertext = $2, secret_key_id = $3,
    previous_secret_ciphertext = $4, previous_secret_key_id = $5
WHERE id = $1 AND secret_ciphertext = $6
RETURNING id;

-- oldest_due_age --
-- Seconds since the oldest due delivery became due (the queue's lag); NULL when none is due.
SELECT extract(epoch FROM now() - min(next_attempt_at))::float8
FROM deliveries
WHERE status IN ('pending', 'retrying') AND next_attempt_at <= now();

-- vacuum_log --
-- After a bulk load, what autovacuum does to the event log's tables in time: record which pages
-- hold only rows every transaction sees, set the rows' commit hints, refresh the statistics.
VACUUM (ANALYZE) events, deliveries;

-- checkpoint --
-- After a bulk load, write every changed page out now, as a log written over days has been: else
-- the checkpoint the load brought on spreads its writes over the next minutes (90% of
-- checkpoint_timeout), beside whatever runs then. Needs the pg_checkpoint role (or superuser).
CHECKPOINT;

-- prune_portal_sessions --
-- Delete the portal sessions that have expired.
DELETE FROM portal_sessions WHERE expires_at <= now();
