-- Worker pools: the shared `default` pool (org_id NULL) and per-tenant dedicated pools.
-- The operator reads this table through a read-only role and turns every row into
-- KEDA ScaledJobs, a NetworkPolicy and a worker Secret.
CREATE TABLE worker_pools (
    id                       text PRIMARY KEY CHECK (id ~ '^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$'),
    org_id                   uuid REFERENCES organizations (id) ON DELETE CASCADE,
    name                     text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    status                   text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused')),
    accelerator              text NOT NULL DEFAULT 'cpu' CHECK (accelerator IN ('cpu', 'nvidia')),
    min_replicas             integer NOT NULL DEFAULT 0 CHECK (min_replicas >= 0),
    max_replicas             integer NOT NULL DEFAULT 10 CHECK (max_replicas >= 1),
    polling_interval_seconds integer NOT NULL DEFAULT 10 CHECK (polling_interval_seconds BETWEEN 1 AND 3600),
    target_queue_length      integer NOT NULL DEFAULT 1 CHECK (target_queue_length >= 1),
    backfill_max_replicas    integer NOT NULL DEFAULT 0 CHECK (backfill_max_replicas >= 0),
    cron_windows             jsonb NOT NULL DEFAULT '[]',
    resources                jsonb NOT NULL DEFAULT '{}',
    node_selector            jsonb NOT NULL DEFAULT '{}',
    tolerations              jsonb NOT NULL DEFAULT '[]',
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    CHECK (min_replicas < max_replicas),
    CHECK (backfill_max_replicas <= max_replicas)
);
CREATE INDEX worker_pools_org_idx ON worker_pools (org_id);

INSERT INTO worker_pools (id, org_id, name, max_replicas, target_queue_length, backfill_max_replicas)
VALUES ('default', NULL, 'Shared pool', 50, 1, 10);

CREATE TABLE workers (
    id                text PRIMARY KEY,
    pool_id           text NOT NULL REFERENCES worker_pools (id) ON DELETE CASCADE,
    lane              text NOT NULL DEFAULT 'live' CHECK (lane IN ('live', 'backfill')),
    node              text NOT NULL DEFAULT '',
    capabilities      jsonb NOT NULL DEFAULT '{}',
    status            text NOT NULL DEFAULT 'online' CHECK (status IN ('online', 'draining', 'evicted', 'offline')),
    current_job_id    uuid,
    registered_at     timestamptz NOT NULL DEFAULT now(),
    last_heartbeat_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workers_pool_idx ON workers (pool_id, status);
CREATE INDEX workers_heartbeat_idx ON workers (last_heartbeat_at) WHERE status <> 'offline';
