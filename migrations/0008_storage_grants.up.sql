-- Buckets other than the deployment's that an organization may name in job
-- inputs and batch sources (internal/objscope). Only a SuperAdmin grants
-- them; without a row here an organization can name nothing outside
-- orgs/{its id}/ of the deployment's bucket. The coordinator reads the rows
-- again at claim, so deleting one fails the queued jobs that relied on it.
CREATE TABLE storage_grants (
    id         uuid PRIMARY KEY,
    org_id     uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    bucket     text NOT NULL CHECK (bucket ~ '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$'),
    -- "" grants the whole bucket; otherwise a key prefix ending in '/'.
    prefix     text NOT NULL DEFAULT '' CHECK (length(prefix) <= 1024 AND (prefix = '' OR right(prefix, 1) = '/')),
    granted_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, bucket, prefix)
);
