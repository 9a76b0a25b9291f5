-- Content keys of encrypted jobs (docs/design/0025-encryption.md): one AES
-- key per job, created when the job is first claimed and served only to the
-- job's organization. The key is sealed (AES-256-GCM under a key derived
-- from MPEGFLOW_SERVER_SECRET, the job id as associated data), so a copy of
-- the database alone does not give it away.
CREATE TABLE content_keys (
    job_id     uuid PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    org_id     uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kid        uuid NOT NULL,
    sealed_key bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
