-- How many jobs one encode pod of a pool runs, one after another, before it
-- exits: above 1 saves a pod start per job for short units of work (chunks,
-- thumbnails, probes). Only a dedicated pool may run more than one: the
-- shared pool (org_id NULL) serves every organization, and a pod that ran
-- one tenant's media must never run another tenant's job.
ALTER TABLE worker_pools
    ADD COLUMN jobs_per_pod integer NOT NULL DEFAULT 1
        CHECK (jobs_per_pod BETWEEN 1 AND 100),
    ADD CONSTRAINT worker_pools_shared_one_job_per_pod CHECK (org_id IS NOT NULL OR jobs_per_pod = 1);
