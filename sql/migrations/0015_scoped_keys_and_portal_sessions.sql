-- App keys get scopes, and apps get portal sessions.
--
-- A key's scopes say what it may do inside its app (hookrelay/services/access.py): `publish`
-- sends events, `manage` looks after endpoints and deliveries, `read` reads. Keys made before
-- scopes existed could do everything, and keep all three.
ALTER TABLE app_keys
    ADD COLUMN scopes text[] NOT NULL DEFAULT '{publish,manage,read}',
    ADD CONSTRAINT app_keys_scopes_known
        CHECK (cardinality(scopes) > 0 AND scopes <@ '{publish,manage,read}'::text[]);

-- A portal session: a bearer token for one app's console, with capabilities, that ends at
-- `expires_at` or when the app's sessions are ended together (the rows are deleted). Stored
-- as a SHA-256 hash, as app keys are. Expired rows are deleted by the workers' retention turn.
CREATE TABLE portal_sessions (
    id            text PRIMARY KEY DEFAULT hookrelay_id('ps_'),
    app_id        text NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    token_hash    bytea NOT NULL UNIQUE,
    capabilities  text[] NOT NULL
        CHECK (capabilities <@ '{view,manage_endpoints,view_secrets,replay,send_test}'::text[]),
    expires_at    timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX portal_sessions_app ON portal_sessions (app_id);
CREATE INDEX portal_sessions_expiry ON portal_sessions (expires_at);
