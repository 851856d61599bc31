-- The named queries of hookrelay/storage/events.py, the only module that runs them:
-- events: ingest (idempotent), listings, the log in commit order.
-- Each is `-- name --`, a one-line description, then the SQL.
-- What is read for the API never holds an event older than the retention period, although its
-- partition may not be dropped yet: `id >= kept_since('evt_')` (sql/migrations/0012).

-- insert_events_with_deliveries --
-- Record events of any apps ($1..$7 are arrays, one element per event) and one delivery per subscribed endpoint each, in one statement; the deliveries due now, by event.
-- With Idempotency-Keys ($9..$12, one element per key, in one order in every process), the
-- keys are taken with their answers in the same statement, and an event whose request came
-- with a key ($8, null for none) is recorded only if its key is taken now: a key taken before
-- is left as it is, and its request's events are not written. Also returns the keys taken.
WITH taken AS (
    INSERT INTO idempotency_keys (app_id, key, request_hash, response)
    SELECT * FROM unnest($9::text[], $10::text[], $11::bytea[], $12::text[])
    ON CONFLICT (app_id, key) DO NOTHING
    RETURNING app_id, key
), event AS (
    INSERT INTO events (id, app_id, type, job_id, body, created_at)
    SELECT new.id, new.app_id, new.type, new.job_id, new.body, new.created_at
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
                $8::text[])
         AS new (id, app_id, type, job_id, body, created_at, key)
    WHERE new.key IS NULL
       OR EXISTS (SELECT 1 FROM taken WHERE taken.app_id = new.app_id AND taken.key = new.key)
    RETURNING id, app_id, type, created_at
), flags AS (
    SELECT * FROM unnest($1::text[], $7::boolean[]) AS flag (id, operational)
), delivery AS (
    INSERT INTO deliveries (app_id, event_id, endpoint_id, status, next_attempt_at)
    SELECT event.app_id, event.id, endpoint.id,
           CASE WHEN endpoint.status = 'active' THEN 'pending' ELSE 'held' END, event.created_at
    FROM event
    JOIN flags ON flags.id = event.id
    -- The apps' endpoints through their index, whatever the events' count (the planner
    -- knows nothing of an unnest's rows; a join on app_id alone may read every endpoint).
    JOIN endpoints AS endpoint
      ON endpoint.app_id = event.app_id AND endpoint.app_id = ANY ($2::text[])
    -- Operational events reach only the endpoints that name them.
    WHERE (endpoint.event_types IS NULL AND NOT flags.operational)
       OR event.type = ANY (endpoint.event_types)
    RETURNING id, event_id, status
)
SELECT coalesce(array_agg(id ORDER BY id) FILTER (WHERE status = 'pending'), '{}') AS ids,
       coalesce(array_agg(event_id ORDER BY id) FILTER (WHERE status = 'pending'), '{}')
       AS event_ids,
       (SELECT coalesce(array_agg(app_id), '{}') FROM taken) AS taken_apps,
       (SELECT coalesce(array_agg(key), '{}') FROM taken) AS taken_keys
FROM delivery;

-- get_idempotency_key --
-- The request an Idempotency-Key was first used for, and the answer it got.
SELECT request_hash, response, created_at > now() - make_interval(secs => $3) AS live
FROM idempotency_keys WHERE app_id = $1 AND key = $2;

-- delete_idempotency_key --
-- Forget an Idempotency-Key that has expired.
DELETE FROM idempotency_keys WHERE app_id = $1 AND key = $2;

-- get_event --
-- One event of an app.
SELECT id, app_id, type, job_id, body, created_at FROM events
WHERE app_id = $1 AND id = $2 AND id >= kept_since('evt_');

-- list_events --
-- An app's events, newest first, before the cursor $3; each filter ($4..$7) applies unless null.
-- Planned for each call's arguments (a filter left out is then no condition at all).
SELECT ev.id, ev.app_id, ev.type, ev.job_id, ev.body, ev.created_at FROM events AS ev
WHERE ev.app_id = $1 AND ev.id >= kept_since('evt_')
  AND ($3::text IS NULL OR ev.id < $3)
  AND ($4::text IS NULL OR ev.type = $4)
  AND ($5::text IS NULL OR ev.job_id = $5)
  AND ($6::text IS NULL OR ev.id >= $6)  -- created at or after: an id bound
  AND ($7::text IS NULL OR ev.id < $7)  -- created before
ORDER BY ev.id DESC LIMIT $2;

-- read_log --
-- An app's events after a log position ($2 transaction, $3 id) in commit order, only from
-- transactions older than every running one; at most $4 events and about $5 bytes of bodies;
-- only of the types $6 and the job $7 (each unless null). Every answer has a row: horizon is
-- that oldest running transaction, and held_back says whether committed events wait behind it
-- (an older transaction is still open).
SELECT horizon.xmin AS horizon, horizon.held_back,
       ev.id, ev.app_id, ev.type, ev.job_id, ev.body, ev.created_at, ev.tx_id, ev.rows_read
FROM (
    SELECT snapshot.xmin, EXISTS (
        SELECT 1 FROM events AS later
        WHERE later.app_id = $1 AND later.tx_id >= snapshot.xmin
          AND later.id >= kept_since('evt_')
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
              AND ev.id >= kept_since('evt_')
              AND ($6::text[] IS NULL OR ev.type = ANY ($6)) AND ($7::text IS NULL OR ev.job_id = $7)
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
       (SELECT min(id) FROM events WHERE app_id = $1 AND id >= kept_since('evt_')) AS oldest_id,
       pg_snapshot_xmin(pg_current_snapshot()) AS horizon
FROM (SELECT 1) AS one
LEFT JOIN events AS found
    ON found.app_id = $1 AND found.id = $2 AND found.id >= kept_since('evt_');

-- job_log_start --
-- The transaction of a job's first event in the log, or the oldest running transaction if
-- that is older (it may still add one of the job's events).
SELECT least(min(tx_id), pg_snapshot_xmin(pg_current_snapshot()))
FROM events WHERE app_id = $1 AND job_id = $2 AND id >= kept_since('evt_');

-- job_events --
-- A job's events in commit order after a log position ($3 transaction, $4 id).
SELECT id, app_id, type, job_id, body, created_at, tx_id FROM events
WHERE app_id = $1 AND job_id = $2 AND (tx_id, id) > ($3::xid8, $4) AND id >= kept_since('evt_')
ORDER BY tx_id, id LIMIT $5;

-- insert_example_event --
-- Record an example event ($1 id, $2 app, $3 type, $4 job, $5 body, $6 created at) with one
-- delivery, to the endpoint $7 alone, if that endpoint is active. One row if the endpoint
-- exists: its status, and the delivery's id (null, and nothing written, unless it is active).
WITH endpoint AS (
    SELECT id, status FROM endpoints WHERE app_id = $2 AND id = $7
), event AS (
    INSERT INTO events (id, app_id, type, job_id, body, created_at)
    SELECT $1, $2, $3, $4, $5, $6 FROM endpoint WHERE endpoint.status = 'active'
    RETURNING id, app_id, created_at
), delivery AS (
    INSERT INTO deliveries (app_id, event_id, endpoint_id, status, next_attempt_at)
    SELECT event.app_id, event.id, $7, 'pending', event.created_at FROM event
    RETURNING id
)
SELECT endpoint.status, (SELECT id FROM delivery) AS delivery_id FROM endpoint;
