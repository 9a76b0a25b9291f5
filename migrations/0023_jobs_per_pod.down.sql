ALTER TABLE worker_pools
    DROP CONSTRAINT worker_pools_shared_one_job_per_pod,
    DROP COLUMN jobs_per_pod;
