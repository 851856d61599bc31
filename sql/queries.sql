-- Named queries: `-- name --`, a one-line description, then the SQL. hookrelay/store.py is the
-- only module that runs them.

-- ping --
-- Check that the database answers.
SELECT 1;

-- get_app --
-- One app by its id or its uid.
SELECT id, name, uid, created_at, updated_at FROM apps WHERE id = $1 OR uid = $1 LIMIT 1;

-- list_apps --
-- Apps in id order after a cursor.
SELECT id, name, uid, created_at, updated_at FROM apps
WHERE $1::text IS NULL OR id > $1
ORDER BY id LIMIT $2;

-- update_app --
-- Rename an app or change its uid.
UPDATE apps SET name = $2, uid = $3, updated_at = now() WHERE id = $1
RETURNING id, name, uid, created_at, updated_at;

-- delete_app --
-- Delete an app and everything it owns.
DELETE FROM apps WHERE id = $1 RETURNING id;

-- app_id_for_key --
-- The app an unrevoked key belongs to.
SELECT app_id FROM app_keys WHERE key_hash = $1 AND revoked_at IS NULL;

-- insert_endpoint --
-- Register an endpoint.
INSERT INTO endpoints (id, app_id, url, description, event_types, signing, secret_ciphertext,
                       secret_key_id, headers, rate_limit_per_s, public_key)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
RETURNING *;

-- get_endpoint --
-- One endpoint of an app.
SELECT * FROM endpoints WHERE app_id = $1 AND id = $2;

-- lock_endpoint --
-- One endpoint of an app, locked for an update.
SELECT * FROM endpoints WHERE app_id = $1 AND id = $2 FOR UPDATE;

-- list_endpoints --
-- An app's endpoints in id order after a cursor.
SELECT * FROM endpoints
WHERE app_id = $1 AND ($2::text IS NULL OR id > $2)
ORDER BY id LIMIT $3;

-- update_endpoint --
-- Write every mutable field of an endpoint; re-enabling it starts its health afresh.
UPDATE endpoints
SET url = $3, description = $4, event_types = $5, status = $6, disabled_reason = $7,
    headers = $8, rate_limit_per_s = $9, updated_at = now(),
    failing_since = CASE WHEN $6 = 'active' AND status <> 'active' THEN NULL ELSE failing_since END,
    consecutive_dead = CASE WHEN $6 = 'active' AND status <> 'active' THEN 0
                            ELSE consecutive_dead END,
    disabled_at = CASE WHEN $6 = 'active' THEN NULL ELSE disabled_at END
WHERE app_id = $1 AND id = $2
RETURNING *;

-- delete_endpoint --
-- Delete an endpoint and its deliveries.
DELETE FROM endpoints WHERE app_id = $1 AND id = $2 RETURNING id;

-- release_held_deliveries --
-- Make an endpoint's held deliveries due now (it was resumed).
UPDATE deliveries SET status = 'pending', next_attempt_at = now(), updated_at = now()
WHERE endpoint_id = $1 AND status = 'held'
RETURNING id, attempt_count;

-- get_event --
-- One event of an app.
SELECT id, app_id, type, job_id, body, created_at FROM events WHERE app_id = $1 AND id = $2;

-- list_events --
-- An app's events, newest first; {filters} becomes the AND-clauses of the filters given.
SELECT ev.id, ev.app_id, ev.type, ev.job_id, ev.body, ev.created_at FROM events AS ev
WHERE ev.app_id = $1 {filters}
ORDER BY ev.id DESC LIMIT $2;

-- read_log --
-- An app's events after a log position ($2 transaction, $3 id) in commit order, only from
-- transactions older than every running one; at most $4 events and about $5 bytes of bodies;
-- {filters} becomes the AND-clauses given. Every answer has a row: horizon is that oldest
-- running transaction, and held_back says whether committed events wait behind it (an older
-- transaction is still open).
SELECT horizon.xmin AS horizon, horizon.held_back,
       ev.id, ev.app_id, ev.type, ev.job_id, ev.body, ev.created_at, ev.tx_id, ev.rows_read
FROM (
    SELECT snapshot.xmin, EXISTS (
        SELECT 1 FROM events AS later WHERE later.app_id = $1 AND later.tx_id >= snapshot.xmin
    ) AS held_back
    FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) AS snapshot
) AS horizon
LEFT JOIN LATERAL (
    -- running: the bytes of bodies up to and including each event; rows_read: the page's size
    SELECT page.*, sum(octet_length(page.body)) OVER (ORDER BY page.tx_id, page.id) AS running,
           count(*) OVER () AS rows_read
    FROM (
        SELECT * FROM events AS ev
        WHERE ev.app_id = $1 AND (ev.tx_id, ev.id) > ($2::xid8, $3) AND ev.tx_id < horizon.xmin
              {filters}
        ORDER BY ev.tx_id, ev.id LIMIT $4
    ) AS page
) AS ev ON ev.running - octet_length(ev.body) < $5  -- the page ends past $5 bytes
ORDER BY ev.tx_id, ev.id;

-- log_horizon --
-- The oldest running transaction: every event of an older one is committed (or never will be).
SELECT pg_snapshot_xmin(pg_current_snapshot());

-- event_log_position --
-- Where one event of an app stands in the log (tx_id, id: null if the app has no such event),
-- the app's oldest event kept, and the oldest running transaction.
SELECT found.tx_id, found.id,
       (SELECT min(id) FROM events WHERE app_id = $1) AS oldest_id,
       pg_snapshot_xmin(pg_current_snapshot()) AS horizon
FROM (SELECT 1) AS one
LEFT JOIN events AS found ON found.app_id = $1 AND found.id = $2;

-- job_log_start --
-- The transaction of a job's first event in the log, or the oldest running transaction if
-- that is older (it may still add one of the job's events).
SELECT least(min(tx_id), pg_snapshot_xmin(pg_current_snapshot()))
FROM events WHERE app_id = $1 AND job_id = $2;

-- job_events --
-- A job's events in commit order after a log position ($3 transaction, $4 id).
SELECT id, app_id, type, job_id, body, created_at, tx_id FROM events
WHERE app_id = $1 AND job_id = $2 AND (tx_id, id) > ($3::xid8, $4)
ORDER BY tx_id, id LIMIT $5;

-- list_event_deliveries --
-- Every delivery of one event, with its endpoint's URL and what its replays say of it.
SELECT d.id, d.app_id, d.event_id, d.endpoint_id, e.url AS endpoint_url, d.status, d.attempt_count,
       d.next_attempt_at, d.last_status_code, d.last_error, d.created_at, d.updated_at,
       d.finished_at, d.replay_of, replays.*
FROM deliveries AS d JOIN endpoints AS e ON e.id = d.endpoint_id
CROSS JOIN LATERAL replays_of(d.id, d.status, d.recovered_by, d.recovered_at) AS replays
WHERE d.event_id = $1
ORDER BY d.id;

-- record_attempt --
-- Record an attempt and the delivery's next state if the lease is still ours; keep endpoint health.
-- $12: the attempt succeeded; $13: the receiver asked to be disabled (410 Gone);
-- $14: dead deliveries in a row that disable an endpoint; $15: seconds of failing that do.
-- The endpoint's new health is computed from its current row (re-read if a concurrent attempt
-- changed it), and the row is written only when its health changes, so a healthy endpoint
-- under load is never a hot row. A replay that succeeded marks its original recovered (the
-- first one to do so), in this same statement: no reader sees the one without the other.
WITH attempt AS (
    INSERT INTO attempts (delivery_id, attempt_number, started_at, duration_ms, status_code,
                          error_kind, error_message, response_headers, response_body)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT (delivery_id, attempt_number) DO NOTHING
), delivery AS (
    UPDATE deliveries
    SET status = $10, next_attempt_at = $11, lease_until = NULL, last_status_code = $5,
        last_error = $7, updated_at = now(),
        finished_at = CASE WHEN $10 IN ('succeeded', 'dead') THEN now() END
    WHERE id = $1 AND status = 'sending' AND attempt_count = $2
    RETURNING id, endpoint_id, status, replay_of
), recovered AS (
    UPDATE deliveries AS original
    SET recovered_by = delivery.id, recovered_at = now()
    FROM delivery
    WHERE $12 AND original.id = delivery.replay_of AND original.recovered_at IS NULL
    RETURNING original.id
), endpoint AS (
    UPDATE endpoints AS e
    SET failing_since = CASE WHEN $12 THEN NULL ELSE coalesce(e.failing_since, $3) END,
        consecutive_dead = CASE WHEN $12 THEN 0
                                WHEN delivery.status = 'dead' THEN e.consecutive_dead + 1
                                ELSE e.consecutive_dead END,
        status = CASE WHEN endpoint_disable_reason(e.status, e.consecutive_dead, e.failing_since,
                                                   $12, $13, delivery.status = 'dead', $3, $14, $15)
                      IS NULL THEN e.status ELSE 'disabled' END,
        disabled_reason = coalesce(
            endpoint_disable_reason(e.status, e.consecutive_dead, e.failing_since,
                                    $12, $13, delivery.status = 'dead', $3, $14, $15),
            e.disabled_reason),
        disabled_at = CASE WHEN endpoint_disable_reason(e.status, e.consecutive_dead,
                                                        e.failing_since, $12, $13,
                                                        delivery.status = 'dead', $3, $14, $15)
                           IS NULL THEN e.disabled_at ELSE now() END,
        updated_at = now()
    FROM delivery
    -- The original is written before the endpoint (this sub-query runs first): the order in
    -- which recording the original itself takes them, so the two cannot deadlock.
    WHERE e.id = delivery.endpoint_id AND (SELECT count(*) FROM recovered) >= 0
      AND CASE WHEN $12 THEN e.failing_since IS NOT NULL OR e.consecutive_dead <> 0
               ELSE e.failing_since IS NULL OR delivery.status = 'dead'
                    OR endpoint_disable_reason(e.status, e.consecutive_dead, e.failing_since,
                                               $12, $13, delivery.status = 'dead', $3, $14, $15)
                       IS NOT NULL END
    -- disabled_at = now() marks an endpoint this very statement disabled.
    RETURNING e.id, CASE WHEN e.disabled_at = now() THEN e.disabled_reason END AS disabled_reason
)
SELECT delivery.id, delivery.status, (SELECT disabled_reason FROM endpoint) AS disabled_reason
FROM delivery;

-- get_delivery --
-- One delivery of an app, with what its replays say of it.
SELECT d.id, d.app_id, d.event_id, d.endpoint_id, d.status, d.attempt_count, d.next_attempt_at,
       d.last_status_code, d.last_error, d.created_at, d.updated_at, d.finished_at, d.replay_of,
       ev.type AS event_type, replays.*
FROM deliveries AS d JOIN events AS ev ON ev.id = d.event_id
CROSS JOIN LATERAL replays_of(d.id, d.status, d.recovered_by, d.recovered_at) AS replays
WHERE d.app_id = $1 AND d.id = $2;

-- list_deliveries --
-- An app's deliveries, newest first, with what their replays say of them; {filters} becomes the
-- AND-clauses of the filters given. The page is chosen first, so only its rows ask their replays.
SELECT page.id, page.app_id, page.event_id, page.endpoint_id, page.status, page.attempt_count,
       page.next_attempt_at, page.last_status_code, page.last_error, page.created_at,
       page.updated_at, page.finished_at, page.replay_of, page.event_type, replays.*
FROM (
    SELECT d.id, d.app_id, d.event_id, d.endpoint_id, d.status, d.attempt_count,
           d.next_attempt_at, d.last_status_code, d.last_error, d.created_at, d.updated_at,
           d.finished_at, d.replay_of, d.recovered_by, d.recovered_at, ev.type AS event_type
    FROM deliveries AS d JOIN events AS ev ON ev.id = d.event_id
    WHERE d.app_id = $1 {filters}
    ORDER BY d.id DESC LIMIT $2
) AS page
CROSS JOIN LATERAL replays_of(page.id, page.status, page.recovered_by, page.recovered_at)
    AS replays
ORDER BY page.id DESC;

-- list_attempts --
-- Attempts at an app's deliveries, newest first; {filters} becomes the AND-clauses given.
SELECT a.id, a.delivery_id, a.attempt_number, a.started_at, a.duration_ms, a.status_code,
       a.error_kind, a.error_message, a.response_headers, a.response_body
FROM attempts AS a JOIN deliveries AS d ON d.id = a.delivery_id
WHERE d.app_id = $1 {filters}
ORDER BY a.id DESC LIMIT $2;

-- lock_migrations --
-- Wait for the migration lock, so that two processes never migrate at once.
SELECT pg_advisory_lock($1);

-- unlock_migrations --
-- Release the migration lock.
SELECT pg_advisory_unlock($1);

-- create_schema_migrations --
-- The table of applied migrations.
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- applied_migrations --
-- The versions already applied.
SELECT version FROM schema_migrations;

-- record_migration --
-- Note a migration as applied.
INSERT INTO schema_migrations (version, name) VALUES ($1, $2);

-- release_delivery --
-- Give a claim back without using up an attempt (a rate or concurrency limit was reached).
UPDATE deliveries
SET status = CASE WHEN attempt_count = 1 THEN 'pending' ELSE 'retrying' END,
    attempt_count = attempt_count - 1, lease_until = NULL,
    next_attempt_at = now() + make_interval(secs => $3), updated_at = now()
WHERE id = $1 AND status = 'sending' AND attempt_count = $2
RETURNING id;

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

-- oldest_due_age --
-- Seconds since the oldest due delivery became due (the queue's lag); NULL when none is due.
SELECT extract(epoch FROM now() - min(next_attempt_at))::float8
FROM deliveries
WHERE status IN ('pending', 'retrying') AND next_attempt_at <= now();

-- take_sweep_turn --
-- Start a sweep if none began within the interval ($1 seconds); the row stays locked until the
-- transaction ends, so one sweep runs at a time and one per interval.
UPDATE sweeper SET swept_at = now()
WHERE id = 1 AND swept_at <= now() - make_interval(secs => $1)
RETURNING swept_at;

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

-- insert_events_with_deliveries --
-- Record events ($3..$8 are arrays, one element per event) and one delivery per subscribed endpoint each, in one statement.
WITH event AS (
    INSERT INTO events (id, app_id, type, job_id, body, created_at)
    SELECT id, $2, type, job_id, body, created_at
    FROM unnest($1::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
         AS new (id, type, job_id, body, created_at)
    RETURNING id, type, created_at
), flags AS (
    SELECT * FROM unnest($1::text[], $7::boolean[]) AS flag (id, operational)
), delivery AS (
    INSERT INTO deliveries (app_id, event_id, endpoint_id, status, next_attempt_at)
    SELECT $2, event.id, endpoint.id,
           CASE WHEN endpoint.status = 'active' THEN 'pending' ELSE 'held' END, event.created_at
    FROM event
    JOIN flags ON flags.id = event.id
    JOIN endpoints AS endpoint ON endpoint.app_id = $2
    -- Operational events reach only the endpoints that name them.
    WHERE (endpoint.event_types IS NULL AND NOT flags.operational)
       OR event.type = ANY (endpoint.event_types)
    RETURNING id, status
)
SELECT coalesce(array_agg(id ORDER BY id) FILTER (WHERE status = 'pending'), '{}')
       AS pending_delivery_ids
FROM delivery;

-- insert_app_key --
-- Add a key to an app.
INSERT INTO app_keys (app_id, key_hash, prefix, name) VALUES ($1, $2, $3, $4)
RETURNING id, app_id, prefix, name, created_at, revoked_at;

-- list_app_keys --
-- An app's keys (never their hashes), in id order after a cursor.
SELECT id, app_id, prefix, name, created_at, revoked_at FROM app_keys
WHERE app_id = $1 AND ($2::text IS NULL OR id > $2)
ORDER BY id LIMIT $3;

-- revoke_app_key --
-- Revoke one of an app's keys.
UPDATE app_keys SET revoked_at = coalesce(revoked_at, now())
WHERE app_id = $1 AND id = $2
RETURNING id, app_id, prefix, name, created_at, revoked_at;

-- insert_idempotency_key --
-- Take an Idempotency-Key for a request (nothing returned if the key is taken).
INSERT INTO idempotency_keys (app_id, key, request_hash) VALUES ($1, $2, $3)
ON CONFLICT (app_id, key) DO NOTHING
RETURNING key;

-- get_idempotency_key --
-- The request an Idempotency-Key was first used for, and the answer it got.
SELECT request_hash, response, created_at > now() - make_interval(secs => $3) AS live
FROM idempotency_keys WHERE app_id = $1 AND key = $2;

-- delete_idempotency_key --
-- Forget an Idempotency-Key that has expired.
DELETE FROM idempotency_keys WHERE app_id = $1 AND key = $2;

-- save_idempotent_response --
-- Keep the answer to the request that took an Idempotency-Key.
UPDATE idempotency_keys SET response = $3 WHERE app_id = $1 AND key = $2;

-- replay_delivery --
-- A new delivery of the same event to the same endpoint (a fresh chain of attempts); it names
-- the original, also when what is replayed is itself a replay.
INSERT INTO deliveries (app_id, event_id, endpoint_id, status, next_attempt_at, replay_of)
SELECT d.app_id, d.event_id, d.endpoint_id,
       CASE WHEN endpoint.status = 'active' THEN 'pending' ELSE 'held' END, now(),
       coalesce(d.replay_of, d.id)
FROM deliveries AS d JOIN endpoints AS endpoint ON endpoint.id = d.endpoint_id
WHERE d.app_id = $1 AND d.id = $2
RETURNING id, status, replay_of;

-- rotate_endpoint_secret --
-- Give an endpoint a new secret; the old one keeps signing beside it for $6 seconds.
UPDATE endpoints
SET previous_secret_ciphertext = secret_ciphertext,
    previous_secret_key_id = secret_key_id,
    previous_secret_expires_at = now() + make_interval(secs => $6),
    secret_ciphertext = $3, secret_key_id = $4, public_key = $5, updated_at = now()
WHERE app_id = $1 AND id = $2
RETURNING *;

-- take_retention_turn --
-- Start a pruning pass if none began within $1 seconds (one pass at a time, across workers).
UPDATE retention SET pruned_at = now()
WHERE id = 1 AND pruned_at <= now() - make_interval(secs => $1)
RETURNING pruned_at;

-- prune_events --
-- Delete up to $2 events older than the id bound $1 (ids sort by time); their deliveries and attempts go with them.
DELETE FROM events
WHERE id IN (SELECT id FROM events WHERE id < $1 ORDER BY id LIMIT $2);

-- prune_idempotency_keys --
-- Delete up to $2 Idempotency-Keys older than $1 seconds.
DELETE FROM idempotency_keys
WHERE (app_id, key) IN (
    SELECT app_id, key FROM idempotency_keys
    WHERE created_at < now() - make_interval(secs => $1)
    LIMIT $2
);

-- insert_app --
-- Create an app.
INSERT INTO apps (id, name, uid) VALUES ($1, $2, $3)
RETURNING id, name, uid, created_at, updated_at;

-- count_deliveries --
-- How many of an app's originals a bulk replay matches, and how many of those it could replay.
-- Replays are never matched (their original is); nor, unless {include_replayed}, an original
-- that a replay recovered or is still replaying. {filters} becomes the AND-clauses of the
-- filters given. {include_replayed} is a literal (true or false), not a parameter: a plan made
-- for a parameter could not use the indexes of the deliveries still lost (their predicate says
-- recovered_at IS NULL), and would read every recovered one.
SELECT count(*) AS matched,
       count(*) FILTER (WHERE endpoint.status <> 'disabled') AS replayable
FROM deliveries AS d
JOIN events AS ev ON ev.id = d.event_id
JOIN endpoints AS endpoint ON endpoint.id = d.endpoint_id
WHERE d.app_id = $1 AND d.replay_of IS NULL
  AND ({include_replayed}
       OR (d.recovered_at IS NULL AND NOT EXISTS (SELECT FROM replays_in_flight(d.id))))
  {filters};

-- lock_app_replays --
-- Wait until no other bulk replay of the app ($1) is in a batch; held until the transaction ends.
-- The batch that follows reads a snapshot taken after the lock is held, so it sees the replays
-- every earlier batch made, and two bulk replays never replay one delivery twice.
-- 1919250540 is "repl" in ASCII: it names these locks among the database's advisory locks.
SELECT pg_advisory_xact_lock(1919250540, hashtext($1));

-- replay_deliveries --
-- Replay the next batch (newest first, $2 at most) of the originals count_deliveries matches ({include_replayed}: a literal, as there), skipping disabled endpoints.
WITH batch AS (
    SELECT d.id, d.event_id, d.endpoint_id, endpoint.status AS endpoint_status
    FROM deliveries AS d
    JOIN events AS ev ON ev.id = d.event_id
    JOIN endpoints AS endpoint ON endpoint.id = d.endpoint_id
    WHERE d.app_id = $1 AND endpoint.status <> 'disabled' AND d.replay_of IS NULL
      AND ({include_replayed}
           OR (d.recovered_at IS NULL AND NOT EXISTS (SELECT FROM replays_in_flight(d.id))))
      {filters}
    ORDER BY d.id DESC LIMIT $2
), replayed AS (
    INSERT INTO deliveries (app_id, event_id, endpoint_id, status, next_attempt_at, replay_of)
    SELECT $1, event_id, endpoint_id,
           CASE WHEN endpoint_status = 'active' THEN 'pending' ELSE 'held' END, now(), id
    FROM batch
    RETURNING id, status
)
SELECT (SELECT min(id) FROM batch) AS last_id,
       (SELECT count(*) FROM replayed) AS replayed,
       coalesce((SELECT array_agg(id) FROM replayed WHERE status = 'pending'), '{}') AS due;

-- delivery_attempts --
-- Every attempt at one delivery, in order.
SELECT id, delivery_id, attempt_number, started_at, duration_ms, status_code, error_kind,
       error_message, response_headers, response_body
FROM attempts WHERE delivery_id = $1 ORDER BY attempt_number;

-- claim_deliveries --
-- Lease the deliveries among $1 that are due (or whose lease expired); hold any whose endpoint is not active.
-- Rows are locked in id order, so concurrent claims of overlapping batches cannot deadlock.
-- Whether a row is due is judged on the locked row (`previous`, its latest version), never on
-- `d`: a condition on d's columns let the planner reach the rows through the due and lease
-- indexes, whose entries for long-finished deliveries (until vacuum) then slowed every claim.
WITH previous AS (
    SELECT id, status, next_attempt_at, lease_until
    FROM deliveries WHERE id = ANY ($1) ORDER BY id FOR UPDATE
), claimed AS (
    UPDATE deliveries AS d
    SET status = CASE WHEN endpoint.status = 'active' THEN 'sending' ELSE 'held' END,
        attempt_count = d.attempt_count
                        + CASE WHEN endpoint.status = 'active' THEN 1 ELSE 0 END,
        lease_until = CASE WHEN endpoint.status = 'active'
                           THEN now() + make_interval(secs => $2) END,
        updated_at = now()
    FROM endpoints AS endpoint, previous
    WHERE d.id = ANY ($1) AND previous.id = d.id
      AND endpoint.id = d.endpoint_id
      AND ((previous.status IN ('pending', 'retrying')
            AND previous.next_attempt_at <= now() + interval '1 second')
           OR (previous.status = 'sending' AND previous.lease_until < now()))
    RETURNING d.id, d.app_id, d.event_id, d.endpoint_id, d.status, d.attempt_count,
              previous.status AS previous_status, endpoint.url, endpoint.signing,
              endpoint.secret_ciphertext, endpoint.secret_key_id, endpoint.headers,
              endpoint.rate_limit_per_s,
              -- A rotated-out secret signs too, until its grace period ends.
              CASE WHEN endpoint.previous_secret_expires_at > now()
                   THEN endpoint.previous_secret_ciphertext END AS previous_secret_ciphertext,
              CASE WHEN endpoint.previous_secret_expires_at > now()
                   THEN endpoint.previous_secret_key_id END AS previous_secret_key_id
)
SELECT claimed.*, event.type AS event_type, event.body
FROM claimed JOIN events AS event ON event.id = claimed.event_id;

-- record_successes --
-- Record first attempts that succeeded (arrays, one element each) whose lease is still ours.
-- A success also ends an endpoint's run of failures, if it had one; a replay's success marks
-- its original recovered (see record_attempt).
-- The lease is judged as `d.status = o.leased`, not against a constant: `d.status = 'sending'`
-- let the planner reach the rows through the lease index, whose entries for long-finished
-- deliveries (until vacuum) then slowed every record; `d.id = ANY ($1)` offers the primary key.
WITH outcome AS MATERIALIZED (
    SELECT *, 'sending'::text AS leased
    FROM unnest($1::text[], $2::integer[], $3::timestamptz[], $4::integer[], $5::integer[],
                $6::jsonb[], $7::text[])
         AS o (delivery_id, attempt_number, started_at, duration_ms, status_code,
               response_headers, response_body)
), delivery AS (
    UPDATE deliveries AS d
    SET status = 'succeeded', next_attempt_at = NULL, lease_until = NULL,
        last_status_code = o.status_code, last_error = NULL, updated_at = now(),
        finished_at = now()
    FROM outcome AS o
    WHERE d.id = ANY ($1) AND d.id = o.delivery_id
      AND d.status = o.leased AND d.attempt_count = o.attempt_number
    RETURNING d.id, d.endpoint_id, d.replay_of
), recovered AS (
    -- One replay per original: two that succeed in one batch must not both write it.
    UPDATE deliveries AS original
    SET recovered_by = first.id, recovered_at = now()
    FROM (SELECT DISTINCT ON (replay_of) replay_of, id FROM delivery
          WHERE replay_of IS NOT NULL ORDER BY replay_of, id) AS first
    WHERE original.id = first.replay_of AND original.recovered_at IS NULL
), attempt AS (
    INSERT INTO attempts (delivery_id, attempt_number, started_at, duration_ms, status_code,
                          response_headers, response_body)
    SELECT delivery_id, attempt_number, started_at, duration_ms, status_code, response_headers,
           response_body
    FROM outcome
    ON CONFLICT (delivery_id, attempt_number) DO NOTHING
), healthy AS (
    UPDATE endpoints AS e
    SET failing_since = NULL, consecutive_dead = 0, updated_at = now()
    WHERE e.id IN (SELECT endpoint_id FROM delivery)
      AND (e.failing_since IS NOT NULL OR e.consecutive_dead <> 0)
)
SELECT coalesce(array_agg(id), '{}') FROM delivery;

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
