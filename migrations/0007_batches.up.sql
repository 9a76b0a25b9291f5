-- Batch backfills: one row per batch, expanded in chunks into backfill-lane
-- jobs. A job of a batch carries batch_id and the normalized input it was
-- made from; the unique index on the pair makes expansion idempotent, so a
-- restarted expansion or a resubmitted batch never creates a duplicate.
CREATE TABLE batches (
    id               uuid PRIMARY KEY,
    org_id           uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    dedupe_key       text NOT NULL CHECK (length(dedupe_key) BETWEEN 1 AND 255),
    request_hash     bytea NOT NULL,
    pool_id          text NOT NULL,
    workflow_id      uuid REFERENCES workflows (id) ON DELETE SET NULL,
    workflow         text NOT NULL DEFAULT '',
    spec             jsonb NOT NULL,
    source           jsonb NOT NULL,
    max_attempts     integer NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 20),
    max_concurrency  integer CHECK (max_concurrency >= 1),
    submit_rate      double precision CHECK (submit_rate > 0),
    status           text NOT NULL DEFAULT 'expanding'
                     CHECK (status IN ('expanding', 'expanded', 'cancelled', 'failed')),
    expected         bigint NOT NULL CHECK (expected >= 0),
    expanded         bigint NOT NULL DEFAULT 0 CHECK (expanded >= 0),
    skipped          bigint NOT NULL DEFAULT 0 CHECK (skipped >= 0),
    duplicates       bigint NOT NULL DEFAULT 0 CHECK (duplicates >= 0),
    line_errors      jsonb NOT NULL DEFAULT '[]',
    cursor_key       text NOT NULL DEFAULT '',
    cursor_line      bigint NOT NULL DEFAULT 0,
    cursor_offset    bigint NOT NULL DEFAULT 0,
    lease_owner      text,
    lease_expires_at timestamptz,
    released_at      timestamptz,
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    expanded_at      timestamptz,
    finished_at      timestamptz,
    UNIQUE (org_id, dedupe_key)
);
CREATE INDEX batches_org_created_idx ON batches (org_id, created_at DESC, id DESC);
CREATE INDEX batches_expanding_idx ON batches (lease_expires_at) WHERE status = 'expanding';

-- No foreign key to batches: a per-row check would slow expansion, and a
-- batch is never deleted before its organization (whose cascade removes both).
ALTER TABLE jobs
    ADD COLUMN batch_id    uuid,
    ADD COLUMN batch_input text,
    ADD COLUMN held        boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX jobs_batch_input ON jobs (batch_id, batch_input) WHERE batch_id IS NOT NULL;
-- Counters (GET /v1/batches/{id}) and the releaser's in-flight count read
-- this index only. Every index on jobs slows expansion, so there is no other.
CREATE INDEX jobs_batch_status_idx ON jobs (batch_id, status, held) WHERE batch_id IS NOT NULL;
-- Held jobs wait for release under the batch's caps, oldest id first.
CREATE INDEX jobs_batch_held_idx ON jobs (batch_id, id) WHERE held;
