-- Console sign-in (docs/console.md): a browser exchanges an API key, once,
-- for a session; the key never stays in the browser. The session acts as
-- its key (revoking the key ends it) until it expires or signs out. Only
-- hashes are stored: of the session id (the HttpOnly cookie) and of the
-- CSRF token every state-changing request repeats in a header.
CREATE TABLE console_sessions (
    id_hash    bytea PRIMARY KEY,
    key_id     uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    csrf_hash  bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
