-- How long an idle encode pod of a pre-warmed pool (min_replicas above 0,
-- or inside a cron pre-scale window) keeps long-polling for work before it
-- exits: the reference's cooldownPeriod. Cold pools' pods exit after one
-- claim wait.
ALTER TABLE worker_pools
    ADD COLUMN warm_idle_seconds integer NOT NULL DEFAULT 300
        CHECK (warm_idle_seconds BETWEEN 20 AND 3600);
