-- The named queries of hookrelay/storage/apps.py, the only module that runs them:
-- apps and their API keys.
-- Each is `-- name --`, a one-line description, then the SQL.

-- insert_app --
-- Create an app.
INSERT INTO apps (id, name, uid) VALUES ($1, $2, $3)
RETURNING id, name, uid, created_at, updated_at;

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
-- Delete an app and everything it owns: foreign keys to the app take its endpoints, events and
-- deliveries; attempts have none (sql/migrations/0012) and go here.
WITH attempts_gone AS (
    DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE app_id = $1)
)
DELETE FROM apps WHERE id = $1 RETURNING id;

-- insert_app_key --
-- Add a key to an app, with its scopes.
INSERT INTO app_keys (app_id, key_hash, prefix, name, scopes) VALUES ($1, $2, $3, $4, $5)
RETURNING id, app_id, prefix, name, scopes, created_at, revoked_at;

-- get_app_key --
-- One of an app's keys.
SELECT id, app_id, prefix, name, scopes, created_at, revoked_at FROM app_keys
WHERE app_id = $1 AND id = $2;

-- list_app_keys --
-- An app's keys (never their hashes), in id order after a cursor.
SELECT id, app_id, prefix, name, scopes, created_at, revoked_at FROM app_keys
WHERE app_id = $1 AND ($2::text IS NULL OR id > $2)
ORDER BY id LIMIT $3;

-- revoke_app_key --
-- Revoke one of an app's keys.
UPDATE app_keys SET revoked_at = coalesce(revoked_at, now())
WHERE app_id = $1 AND id = $2
RETURNING id, app_id, prefix, name, scopes, created_at, revoked_at;

-- credential_of_key --
-- The app an unrevoked key belongs to, and the key's scopes.
SELECT app_id, scopes AS names, NULL::timestamptz AS expires_at FROM app_keys
WHERE key_hash = $1 AND revoked_at IS NULL;

-- insert_portal_session --
-- Open a portal session on an app, for $4 seconds.
INSERT INTO portal_sessions (app_id, token_hash, capabilities, expires_at)
VALUES ($1, $2, $3, now() + make_interval(secs => $4))
RETURNING id, app_id, capabilities, expires_at, created_at;

-- credential_of_portal_session --
-- The app a portal session that has not expired opens, and the session's capabilities.
SELECT app_id, capabilities AS names, expires_at FROM portal_sessions
WHERE token_hash = $1 AND expires_at > now();

-- end_portal_sessions --
-- End every portal session of an app; how many had not expired yet.
WITH ended AS (DELETE FROM portal_sessions WHERE app_id = $1 RETURNING expires_at)
SELECT count(*) FILTER (WHERE expires_at > now()) FROM ended;

-- app_summary --
-- An app at a glance: its endpoints by status, those failing (every attempt has failed since
-- failing_since, and not yet disabled), and its dead deliveries still lost, counted up to $2
-- (through the index that holds only those, deliveries_lost_app_idx of migration 0007: the
-- condition here is its predicate).
SELECT count(*) AS total,
       count(*) FILTER (WHERE status = 'active') AS active,
       count(*) FILTER (WHERE status = 'paused') AS paused,
       count(*) FILTER (WHERE status = 'disabled') AS disabled,
       count(*) FILTER (WHERE failing_since IS NOT NULL AND status <> 'disabled') AS failing,
       (SELECT count(*) FROM (
            SELECT FROM deliveries AS d
            WHERE d.app_id = $1 AND d.status = 'dead' AND d.replay_of IS NULL
              AND d.recovered_at IS NULL AND d.id >= kept_since('dlv_')
            LIMIT $2) AS lost) AS lost
FROM endpoints WHERE app_id = $1;
