-- The first schema: apps and their keys, endpoints, events, deliveries and attempts.

-- Prefixed, time-sortable ids: prefix, 12 hex digits of unix milliseconds, 20 random hex digits
-- (the same shape as hookrelay.ids.new_id).
CREATE FUNCTION hookrelay_id(prefix text) RETURNS text
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    SELECT prefix
        || lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0')
        || substr(md5(gen_random_uuid()::text), 1, 20)
$$;

CREATE TABLE apps (
    id          text PRIMARY KEY DEFAULT hookrelay_id('app_'),
    uid         text UNIQUE,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- App keys are stored as SHA-256 hashes; `prefix` is the part shown in listings.
CREATE TABLE app_keys (
    id          text PRIMARY KEY DEFAULT hookrelay_id('key_'),
    app_id      text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    key_hash    bytea NOT NULL UNIQUE,
    prefix      text NOT NULL,
    name        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX app_keys_app_idx ON app_keys (app_id, id);

CREATE TABLE endpoints (
    id                 text PRIMARY KEY,
    app_id             text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    url                text NOT NULL,
    description        text NOT NULL DEFAULT '',
    -- NULL: every event type.
    event_types        text[],
    status             text NOT NULL DEFAULT 'active'
                       CHECK (status IN ('active', 'paused', 'disabled')),
    disabled_reason    text,
    signing            text NOT NULL DEFAULT 'hmac' CHECK (signing IN ('hmac', 'ed25519')),
    -- AES-GCM (nonce + ciphertext) of the signing secret, and the id of the key that sealed it.
    secret_ciphertext  bytea NOT NULL,
    secret_key_id      text NOT NULL,
    headers            jsonb NOT NULL DEFAULT '{}',
    rate_limit_per_s   integer CHECK (rate_limit_per_s > 0),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX endpoints_app_idx ON endpoints (app_id, id);

CREATE TABLE events (
    id          text PRIMARY KEY,
    app_id      text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    type        text NOT NULL,
    job_id      text,
    -- The exact webhook body, {"type", "timestamp", "data"}, serialised once at ingest so that
    -- every attempt and every endpoint gets the same bytes.
    body        text NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX events_app_idx ON events (app_id, id);
CREATE INDEX events_app_job_idx ON events (app_id, job_id, id) WHERE job_id IS NOT NULL;

CREATE TABLE deliveries (
    id                text PRIMARY KEY DEFAULT hookrelay_id('dlv_'),
    app_id            text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    event_id          text NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    endpoint_id       text NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    status            text NOT NULL
                      CHECK (status IN ('pending', 'sending', 'retrying', 'succeeded', 'dead',
                                        'held', 'cancelled')),
    attempt_count     integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz,
    lease_until       timestamptz,
    last_status_code  integer,
    last_error        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz
);
-- What the sweeper scans: due work and expired leases.
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at)
    WHERE status IN ('pending', 'retrying');
CREATE INDEX deliveries_lease_idx ON deliveries (lease_until) WHERE status = 'sending';
CREATE INDEX deliveries_event_idx ON deliveries (event_id);
CREATE INDEX deliveries_endpoint_idx ON deliveries (endpoint_id, status, id);
CREATE INDEX deliveries_app_idx ON deliveries (app_id, id);

CREATE TABLE attempts (
    id                text PRIMARY KEY DEFAULT hookrelay_id('att_'),
    delivery_id       text NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt_number    integer NOT NULL,
    started_at        timestamptz NOT NULL,
    duration_ms       integer NOT NULL,
    status_code       integer,
    -- NULL on a 2xx; else http_status, timeout, connect, reset, unsafe_target, ...
    error_kind        text,
    error_message     text,
    response_headers  jsonb,
    response_body     text,
    UNIQUE (delivery_id, attempt_number)
);
