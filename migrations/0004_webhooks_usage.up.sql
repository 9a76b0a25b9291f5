-- Webhooks keep their signing secret: deliveries are signed with it (HMAC-SHA256).
CREATE TABLE webhooks (
    id                   uuid PRIMARY KEY,
    org_id               uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    url                  text NOT NULL,
    description          text NOT NULL DEFAULT '',
    events               text[] NOT NULL,
    secret               text NOT NULL,
    enabled              boolean NOT NULL DEFAULT true,
    consecutive_failures integer NOT NULL DEFAULT 0,
    disabled_reason      text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_org_idx ON webhooks (org_id, created_at DESC, id DESC);

CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY,
    webhook_id       uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    org_id           uuid NOT NULL,
    event_id         text NOT NULL,
    event_type       text NOT NULL,
    payload          jsonb NOT NULL,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_status_code integer,
    last_error       text,
    latency_ms       integer,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, created_at DESC);

-- One row per finished job; the usage API sums them per org and day.
CREATE TABLE usage_records (
    id             bigserial PRIMARY KEY,
    org_id         uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    job_id         uuid NOT NULL UNIQUE,
    day            date NOT NULL,
    status         text NOT NULL CHECK (status IN ('completed', 'failed', 'cancelled')),
    accelerator    text NOT NULL DEFAULT 'cpu',
    encode_seconds double precision NOT NULL DEFAULT 0,
    gpu_seconds    double precision NOT NULL DEFAULT 0,
    output_minutes double precision NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_records_org_day_idx ON usage_records (org_id, day);
