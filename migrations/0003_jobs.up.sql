-- Workflows hold an encode spec; assets are objects customers upload; jobs are
-- the unit of work. Postgres is the truth; Redis lists only hint at dispatch.
CREATE TABLE workflows (
    id          uuid PRIMARY KEY,
    org_id      uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description text NOT NULL DEFAULT '',
    spec        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);

CREATE TABLE assets (
    id           uuid PRIMARY KEY,
    org_id       uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    filename     text NOT NULL,
    content_type text NOT NULL,
    size_bytes   bigint CHECK (size_bytes >= 0),
    object_key   text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assets_org_idx ON assets (org_id, created_at DESC, id DESC);

CREATE TABLE jobs (
    id                uuid PRIMARY KEY,
    org_id            uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    pool_id           text NOT NULL, -- no FK: finished jobs outlive their pool
    lane              text NOT NULL DEFAULT 'live' CHECK (lane IN ('live', 'backfill')),
    priority          integer NOT NULL DEFAULT 0 CHECK (priority BETWEEN -100 AND 100),
    status            text NOT NULL DEFAULT 'queued'
                      CHECK (status IN ('queued', 'running', 'retry_wait', 'completed', 'failed', 'cancelled')),
    input_asset_id    uuid REFERENCES assets (id) ON DELETE SET NULL,
    input_url         text,
    workflow_id       uuid REFERENCES workflows (id) ON DELETE SET NULL,
    spec              jsonb NOT NULL,
    idempotency_key   text,
    request_hash      bytea,
    attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts      integer NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 20),
    lease_expires_at  timestamptz,
    run_after         timestamptz,
    worker_id         text,
    claim_token_hash  bytea,
    progress          real NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 1),
    error             text,
    outputs           jsonb NOT NULL DEFAULT '[]',
    usage             jsonb NOT NULL DEFAULT '{}',
    metadata          jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz,
    CHECK ((input_asset_id IS NOT NULL) <> (input_url IS NOT NULL) OR status IN ('completed', 'failed', 'cancelled'))
);
CREATE UNIQUE INDEX jobs_idempotency_key ON jobs (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_org_status_created_idx ON jobs (org_id, status, created_at DESC, id DESC);
CREATE INDEX jobs_org_created_idx ON jobs (org_id, created_at DESC, id DESC);
CREATE INDEX jobs_lease_idx ON jobs (lease_expires_at) WHERE status = 'running';
CREATE INDEX jobs_queued_idx ON jobs (pool_id, lane, created_at) WHERE status = 'queued';
CREATE INDEX jobs_retry_idx ON jobs (run_after) WHERE status = 'retry_wait';

CREATE TABLE job_events (
    id         bigserial PRIMARY KEY,
    job_id     uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    org_id     uuid NOT NULL,
    type       text NOT NULL,
    data       jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_events_job_idx ON job_events (job_id, id);
