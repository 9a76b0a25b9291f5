DROP TRIGGER worker_pools_resumed ON worker_pools;
DROP FUNCTION mpegflow_worker_pools_resumed();
ALTER TABLE worker_pools DROP COLUMN resumed_at;
