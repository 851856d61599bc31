-- The named queries of hookrelay/storage/endpoints.py, the only module that runs them:
-- endpoints: settings, secrets and health.
-- Each is `-- name --`, a one-line description, then the SQL.

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

-- release_held_deliveries --
-- Make an endpoint's held deliveries due now (it was resumed).
UPDATE deliveries SET status = 'pending', next_attempt_at = now(), updated_at = now()
WHERE endpoint_id = $1 AND status = 'held'
RETURNING id, attempt_count;

-- rotate_endpoint_secret --
-- Give an endpoint a new secret; the old one keeps signing beside it for $6 seconds.
UPDATE endpoints
SET previous_secret_ciphertext = secret_ciphertext,
    previous_secret_key_id = secret_key_id,
    previous_secret_expires_at = now() + make_interval(secs => $6),
    secret_ciphertext = $3, secret_key_id = $4, public_key = $5, updated_at = now()
WHERE app_id = $1 AND id = $2
RETURNING *;

-- delete_endpoint --
-- Delete an endpoint and its deliveries (a foreign key to the endpoint takes them) with their
-- attempts (which have none: sql/migrations/0012).
WITH attempts_gone AS (
    DELETE FROM attempts
    WHERE delivery_id IN (
        SELECT id FROM deliveries WHERE app_id = $1 AND endpoint_id = $2
    )
)
DELETE FROM endpoints WHERE app_id = $1 AND id = $2 RETURNING id;

-- endpoint_stats --
-- An endpoint's health for its console: attempts in the last hour and day ($2, $3: the
-- attempt ids those times begin at) and how many succeeded, of deliveries made since $4 (the
-- oldest a delivery attempted in the last day can be, retries included), each window's
-- attempts counted up to $6 (past it, the rate is of those counted); the oldest delivery
-- still waiting to be sent, and how many wait and how many are lost (still lost: as the
-- partial indexes of migration 0007 hold them), each counted up to $5.
WITH last_hour AS MATERIALIZED (
    SELECT a.error_kind IS NULL AS ok
    FROM deliveries AS d JOIN attempts AS a ON a.delivery_id = d.id
    WHERE d.endpoint_id = $1 AND d.id >= $4 AND a.delivery_id >= $4 AND a.id >= $2
    LIMIT $6
), last_day AS MATERIALIZED (
    SELECT a.error_kind IS NULL AS ok
    FROM deliveries AS d JOIN attempts AS a ON a.delivery_id = d.id
    WHERE d.endpoint_id = $1 AND d.id >= $4 AND a.delivery_id >= $4 AND a.id >= $3
    LIMIT $6
)
SELECT (SELECT failing_since FROM endpoints WHERE id = $1) AS failing_since,
       (SELECT count(*) FROM last_hour) AS hour_attempts,
       (SELECT count(*) FROM last_hour WHERE ok) AS hour_succeeded,
       (SELECT count(*) FROM last_day) AS day_attempts,
       (SELECT count(*) FROM last_day WHERE ok) AS day_succeeded,
       least((SELECT min(id) FROM deliveries WHERE endpoint_id = $1 AND status = 'pending'
                AND id >= kept_since('dlv_')),
             (SELECT min(id) FROM deliveries WHERE endpoint_id = $1 AND status = 'retrying'
                AND id >= kept_since('dlv_')),
             (SELECT min(id) FROM deliveries WHERE endpoint_id = $1 AND status = 'sending'
                AND id >= kept_since('dlv_')),
             (SELECT min(id) FROM deliveries WHERE endpoint_id = $1 AND status = 'held'
                AND id >= kept_since('dlv_'))) AS oldest_waiting,
       (SELECT count(*) FROM (
            SELECT FROM deliveries WHERE endpoint_id = $1
              AND status IN ('pending', 'retrying', 'sending', 'held')
              AND id >= kept_since('dlv_')
            LIMIT $5) AS waiting) AS waiting,
       (SELECT count(*) FROM (
            SELECT FROM deliveries WHERE endpoint_id = $1 AND status = 'dead'
              AND replay_of IS NULL AND recovered_at IS NULL AND id >= kept_since('dlv_')
            LIMIT $5) AS lost) AS lost;
