-- The named queries of hookrelay/storage/migrate.py, the only module that runs them:
-- the record of applied migrations.
-- Each is `-- name --`, a one-line description, then the SQL.

-- lock_migrations --
-- Take the migration lock if it is free (true), so that two processes never migrate at once.
SELECT pg_try_advisory_lock($1);

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
