ALTER TABLE worker_pools
    DROP CONSTRAINT worker_pools_paused_by_status,
    DROP COLUMN schedule_edge_applied_at,
    DROP COLUMN paused_by,
    DROP COLUMN pause_windows;
