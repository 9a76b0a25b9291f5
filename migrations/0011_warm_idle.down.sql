ALTER TABLE worker_pools DROP COLUMN warm_idle_seconds;
