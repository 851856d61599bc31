-- The named queries of hookrelay/storage/deliveries.py, the only module that runs them:
-- deliveries and attempts: claim, record, list, replay.
-- Each is `-- name --`, a one-line description, then the SQL.
-- What is read or replayed for the API never holds a delivery older than the retention period,
-- although its partition may not be dropped yet: `id >= kept_since('dlv_')` (migration 0012).

-- claim_deliveries --
-- Lease the deliveries among $1 that are due (or whose lease expired); hold any whose endpoint is not active.
-- Rows are locked in id order, so concurrent claims of overlapping batches cannot deadlock.
-- Whether a row is due is judged on the locked row (`previous`, its latest version), never on
-- `d`: a condition on d's columns let the planner reach the rows through the due and lease
-- indexes, whose entries for long-finished deliveries (until vacuum) then slowed every claim.
-- Planned for each call's ids, so only the partitions holding them are planned and read; the
-- events are read apart (claimed_events): joined here, every events partition was planned,
-- since the event ids are not known until the claim has run (2.4 to 3.7 ms of planning a
-- claim of 100 over 33 of them, Postgres 15).
WITH previous AS (
    SELECT id, status, next_attempt_at, lease_until
    FROM deliveries WHERE id = ANY ($1) ORDER BY id FOR UPDATE
)
UPDATE deliveries AS d
SET status = CASE WHEN endpoint.status = 'active' THEN 'sending' ELSE 'held' END,
    attempt_count = d.attempt_count + CASE WHEN endpoint.status = 'active' THEN 1 ELSE 0 END,
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
               THEN endpoint.previous_secret_key_id END AS previous_secret_key_id,
          d.replay_of;

-- claimed_events --
-- The type and body of the events $1 (those of the deliveries just claimed). Planned for each
-- call's ids, like the claim: only the partitions holding them are planned and read.
SELECT id, type, body FROM events WHERE id = ANY ($1::text[]);

-- release_delivery --
-- Give a claim back without using up an attempt (a rate or concurrency limit was reached).
UPDATE deliveries
SET status = CASE WHEN attempt_count = 1 THEN 'pending' ELSE 'retrying' END,
    attempt_count = attempt_count - 1, lease_until = NULL,
    next_attempt_at = now() + make_interval(secs => $3), updated_at = now()
WHERE id = $1 AND status = 'sending' AND attempt_count = $2
RETURNING id;

-- record_successes --
-- Record first attempts that succeeded (arrays, one element each) whose lease is still ours.
-- A success also ends an endpoint's run of failures, if it had one; a replay's success marks
-- its original recovered (see record_attempt).
-- The lease is judged as `d.status = o.leased`, not against a constant: `d.status = 'sending'`
-- let the planner reach the rows through the lease index, whose entries for long-finished
-- deliveries (until vacuum) then slowed every record; `d.id = ANY ($1)` offers the primary key.
-- $8 are the originals the replays among them replay (as the claim said), sorted: a replay's
-- original may be in any partition, and bounding their ids by the first and the last lets the
-- plan, made for each call's arguments, leave out every partition outside (without it, each
-- record planned them all). With none (the caller passes none, not an empty range), both
-- bounds are 'dlv_g', after every delivery id ('g' follows the hex digits, in any collation),
-- which no partition holds, so the plan leaves out every partition: null bounds folded the
-- condition to false only after every partition was planned as one the statement may write
-- (6 to 11 ms of planning a record of 100 at 52 partitions). A range, not `= ANY ($8)`: with
-- that, Postgres 18's generic plan reached the originals through the (app_id, id) index by a
-- skip scan, a descent per app.
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
    WHERE original.id = first.replay_of
      AND original.id BETWEEN coalesce(($8::text[])[1], 'dlv_g')
                          AND coalesce(($8::text[])[cardinality($8::text[])], 'dlv_g')
      AND original.recovered_at IS NULL
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

-- record_attempt --
-- Record an attempt and the delivery's next state if the lease is still ours; keep endpoint health.
-- $12: the attempt succeeded; $13: the receiver asked to be disabled (410 Gone);
-- $14: dead deliveries in a row that disable an endpoint; $15: seconds of failing that do;
-- $16: the original the delivery replays, if it is a replay (as record_successes's $8; when
-- there is none to mark recovered, 'dlv_g', an id no partition holds, as there).
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
    -- Not `$12 AND`: false when it failed, it would fold the condition as null bounds do.
    WHERE original.id = coalesce(CASE WHEN $12 THEN $16 END, 'dlv_g')
      AND original.id = delivery.replay_of
      AND original.recovered_at IS NULL
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
LEFT JOIN LATERAL newest_replays(ARRAY[d.id]) AS newest ON true
CROSS JOIN LATERAL replay_state(d.status, newest.replay_id, d.recovered_by, d.recovered_at)
    AS replays
WHERE d.app_id = $1 AND d.id = $2 AND d.id >= kept_since('dlv_');

-- list_deliveries --
-- An app's deliveries, newest first, before the cursor $3, with what their replays say of them.
-- Each filter ($4..$10, the same as replay_deliveries's) applies unless null; $11 keeps only
-- the still lost (dead originals no replay recovered), through the index that holds only those.
-- Planned for each
-- call's arguments, so that a status given reaches the partial index of the statuses people
-- list (its predicate names them). The page is chosen first, so only its rows ask their replays
-- and their event's type. That planning is paid on every call, for each partition of the log
-- that no constant rules out, so nothing else is planned there (migrations 0013, 0014): the
-- events are read only for a filter on them ($7, $8; without one, the condition is true and
-- its sub-query is never planned), and the page's lookups are functions planned once per
-- connection, its replays asked once for the whole page.
WITH page AS MATERIALIZED (
    SELECT d.id, d.app_id, d.event_id, d.endpoint_id, d.status, d.attempt_count,
           d.next_attempt_at, d.last_status_code, d.last_error, d.created_at, d.updated_at,
           d.finished_at, d.replay_of, d.recovered_by, d.recovered_at
    FROM deliveries AS d
    WHERE d.app_id = $1 AND d.id >= kept_since('dlv_')
      AND ($3::text IS NULL OR d.id < $3)
      AND ($4::text IS NULL OR d.status = $4)
      AND ($5::text IS NULL OR d.endpoint_id = $5)
      AND ($6::text IS NULL OR d.event_id = $6)
      AND (($7::text IS NULL AND $8::text IS NULL)
           OR EXISTS (SELECT FROM events AS ev
                      WHERE ev.id = d.event_id AND ($7::text IS NULL OR ev.type = $7)
                        AND ($8::text IS NULL OR ev.job_id = $8)))
      AND ($9::text IS NULL OR d.id >= $9)  -- created at or after: an id bound
      AND ($10::text IS NULL OR d.id < $10)  -- created before
      AND (NOT $11::boolean
           OR (d.status = 'dead' AND d.replay_of IS NULL AND d.recovered_at IS NULL))
    ORDER BY d.id DESC LIMIT $2
)
SELECT page.id, page.app_id, page.event_id, page.endpoint_id, page.status, page.attempt_count,
       page.next_attempt_at, page.last_status_code, page.last_error, page.created_at,
       page.updated_at, page.finished_at, page.replay_of,
       event_type_of(page.event_id) AS event_type, replays.*
FROM page
LEFT JOIN newest_replays((SELECT array_agg(id) FROM page)) AS newest
    ON newest.original_id = page.id
CROSS JOIN LATERAL replay_state(page.status, newest.replay_id, page.recovered_by,
                                page.recovered_at) AS replays
ORDER BY page.id DESC;

-- list_event_deliveries --
-- Every delivery of one event, with its endpoint's URL and what its replays say of it (asked
-- once for them all).
WITH page AS MATERIALIZED (
    SELECT d.id, d.app_id, d.event_id, d.endpoint_id, e.url AS endpoint_url, d.status,
           d.attempt_count, d.next_attempt_at, d.last_status_code, d.last_error, d.created_at,
           d.updated_at, d.finished_at, d.replay_of, d.recovered_by, d.recovered_at
    FROM deliveries AS d JOIN endpoints AS e ON e.id = d.endpoint_id
    WHERE d.event_id = $1 AND d.id >= kept_since('dlv_')
)
SELECT page.id, page.app_id, page.event_id, page.endpoint_id, page.endpoint_url, page.status,
       page.attempt_count, page.next_attempt_at, page.last_status_code, page.last_error,
       page.created_at, page.updated_at, page.finished_at, page.replay_of, replays.*
FROM page
LEFT JOIN newest_replays((SELECT array_agg(id) FROM page)) AS newest
    ON newest.original_id = page.id
CROSS JOIN LATERAL replay_state(page.status, newest.replay_id, page.recovered_by,
                                page.recovered_at) AS replays
ORDER BY page.id;

-- lock_app_replays --
-- Wait until no other bulk replay of the app ($1) is in a batch; held until the transaction ends.
-- The batch that follows reads a snapshot taken after the lock is held, so it sees the replays
-- every earlier batch made, and two bulk replays never replay one delivery twice.
-- 1919250540 is "repl" in ASCII: it names these locks among the database's advisory locks.
SELECT pg_advisory_xact_lock(1919250540, hashtext($1));

-- replay_deliveries --
-- Count the originals a bulk replay matches ($2 null), or replay the next batch ($2 at most).
-- Matched: an app's originals (never a replay: its original is) that are still lost, unless $11
-- includes those a replay recovered or is still replaying; each filter ($4..$10, the same as
-- list_deliveries's) applies unless null. A count says how many match, and how many of those
-- have an endpoint that is not disabled (replayable). A batch replays the newest replayable
-- matches before the cursor $3, each as a new delivery, and says its last id and which new
-- deliveries are due now. Planned for each call's arguments: what is left out is then no
-- condition at all, and "still lost" is seen to imply the predicate of the indexes that hold
-- only those (recovered_at IS NULL), so the plan never reads what was recovered. The events
-- are read only for a filter on them (as in list_deliveries): joined, each batch hashed every
-- event of the log (1,000,000 in the admin benchmark) to match its 2,000.
WITH matched AS NOT MATERIALIZED (
    SELECT d.id, d.event_id, d.endpoint_id, endpoint.status AS endpoint_status
    FROM deliveries AS d
    JOIN endpoints AS endpoint ON endpoint.id = d.endpoint_id
    WHERE d.app_id = $1 AND d.replay_of IS NULL AND d.id >= kept_since('dlv_')
      AND ($11::boolean
           OR (d.recovered_at IS NULL AND NOT EXISTS (SELECT FROM replays_in_flight(d.id))))
      AND ($4::text IS NULL OR d.status = $4)
      AND ($5::text IS NULL OR d.endpoint_id = $5)
      AND ($6::text IS NULL OR d.event_id = $6)
      AND (($7::text IS NULL AND $8::text IS NULL)
           OR EXISTS (SELECT FROM events AS ev
                      WHERE ev.id = d.event_id AND ($7::text IS NULL OR ev.type = $7)
                        AND ($8::text IS NULL OR ev.job_id = $8)))
      AND ($9::text IS NULL OR d.id >= $9)  -- created at or after: an id bound
      AND ($10::text IS NULL OR d.id < $10)  -- created before
), counted AS (
    SELECT count(*) AS matched,
           count(*) FILTER (WHERE endpoint_status <> 'disabled') AS replayable
    FROM matched
    WHERE $2::integer IS NULL
), batch AS (
    SELECT id, event_id, endpoint_id, endpoint_status FROM matched
    WHERE $2 IS NOT NULL AND endpoint_status <> 'disabled' AND ($3::text IS NULL OR id < $3)
    ORDER BY id DESC LIMIT $2
), replayed AS (
    INSERT INTO deliveries (app_id, event_id, endpoint_id, status, next_attempt_at, replay_of)
    SELECT $1, event_id, endpoint_id,
           CASE WHEN endpoint_status = 'active' THEN 'pending' ELSE 'held' END, now(), id
    FROM batch
    RETURNING id, status
)
SELECT counted.matched, counted.replayable,
       (SELECT min(id) FROM batch) AS last_id,
       (SELECT count(*) FROM replayed) AS replayed,
       coalesce((SELECT array_agg(id) FROM replayed WHERE status = 'pending'), '{}') AS due
FROM counted;

-- replay_delivery --
-- A new delivery of the same event to the same endpoint (a fresh chain of attempts); it names
-- the original, also when what is replayed is itself a replay.
INSERT INTO deliveries (app_id, event_id, endpoint_id, status, next_attempt_at, replay_of)
SELECT d.app_id, d.event_id, d.endpoint_id,
       CASE WHEN endpoint.status = 'active' THEN 'pending' ELSE 'held' END, now(),
       coalesce(d.replay_of, d.id)
FROM deliveries AS d JOIN endpoints AS endpoint ON endpoint.id = d.endpoint_id
WHERE d.app_id = $1 AND d.id = $2 AND d.id >= kept_since('dlv_')
RETURNING id, status, replay_of;

-- list_attempts --
-- Attempts at an app's deliveries, newest first, before the cursor $3; each filter ($4..$7)
-- applies unless null. Planned for each call's arguments (a filter left out is no condition).
SELECT a.id, a.delivery_id, a.attempt_number, a.started_at, a.duration_ms, a.status_code,
       a.error_kind, a.error_message, a.response_headers, a.response_body
FROM attempts AS a JOIN deliveries AS d ON d.id = a.delivery_id
WHERE d.app_id = $1 AND d.id >= kept_since('dlv_') AND a.delivery_id >= kept_since('dlv_')
  AND ($3::text IS NULL OR a.id < $3)
  AND ($4::text IS NULL OR a.delivery_id = $4)
  AND ($5::text IS NULL OR d.endpoint_id = $5)
  AND ($6::text IS NULL OR a.id >= $6)  -- made at or after: an id bound
  AND ($7::text IS NULL OR a.id < $7)  -- made before
ORDER BY a.id DESC LIMIT $2;

-- delivery_attempts --
-- Every attempt at one delivery, in order.
SELECT id, delivery_id, attempt_number, started_at, duration_ms, status_code, error_kind,
       error_message, response_headers, response_body
FROM attempts WHERE delivery_id = $1 ORDER BY attempt_number;
