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

-- app_id_for_key --
-- The app an unrevoked key belongs to.
SELECT app_id FROM app_keys WHERE key_hash = $1 AND revoked_at IS NULL;
