-- Replays, idempotent ingest, secret rotation, Ed25519 public keys.

-- A replayed delivery is a new delivery (a fresh chain of attempts) of the same event.
ALTER TABLE deliveries ADD COLUMN replay_of text REFERENCES deliveries (id) ON DELETE SET NULL;

-- After a rotation the previous secret keeps signing, beside the new one, until it expires.
ALTER TABLE endpoints ADD COLUMN previous_secret_ciphertext bytea;
ALTER TABLE endpoints ADD COLUMN previous_secret_key_id text;
ALTER TABLE endpoints ADD COLUMN previous_secret_expires_at timestamptz;
-- The whpk_ key that verifies an Ed25519 endpoint's signatures (public, so stored in clear).
ALTER TABLE endpoints ADD COLUMN public_key text;

-- The first answer to each Idempotency-Key, kept 24 hours.
CREATE TABLE idempotency_keys (
    app_id        text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    key           text NOT NULL,
    request_hash  bytea NOT NULL,
    response      jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- Listings of one endpoint's deliveries by status come from deliveries_endpoint_idx; these
-- serve the app-wide listing by status and the delivery list of one event's job.
CREATE INDEX deliveries_app_status_idx ON deliveries (app_id, status, id);

-- The retention job's turn, like the sweeper's.
CREATE TABLE retention (
    id           integer PRIMARY KEY CHECK (id = 1),
    pruned_at    timestamptz NOT NULL
);
INSERT INTO retention (id, pruned_at) VALUES (1, '-infinity');

-- Event listings filtered by type.
CREATE INDEX events_app_type_idx ON events (app_id, type, id);
