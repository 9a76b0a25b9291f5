-- Scheduled pause (issue 18 item 3; docs/design/0017-scheduled-pause.md).
--
-- pause_windows: the pool's recurring pause windows, [{start, end, timezone}]
--   (five-field cron, IANA zone), at most 20; validated by the API.
-- paused_by: what paused the pool, 'schedule' or 'manual'; NULL while it runs.
-- schedule_edge_applied_at: the latest window edge (start or end) the Schedule
--   Evaluator has applied. Replicas apply an edge with a conditional UPDATE on
--   it, so each edge is applied once, and after downtime only the latest
--   missed one. NULL until the windows are first evaluated (new windows,
--   changed windows). Manual pause and resume leave it alone.
ALTER TABLE worker_pools
    ADD COLUMN pause_windows jsonb NOT NULL DEFAULT '[]'
        CHECK (jsonb_typeof(pause_windows) = 'array' AND jsonb_array_length(pause_windows) <= 20),
    ADD COLUMN paused_by text CHECK (paused_by IN ('schedule', 'manual')),
    ADD COLUMN schedule_edge_applied_at timestamptz;

-- Pools paused before this migration were paused by hand.
UPDATE worker_pools SET paused_by = 'manual' WHERE status = 'paused';

-- A running pool was paused by nothing.
ALTER TABLE worker_pools
    ADD CONSTRAINT worker_pools_paused_by_status CHECK (paused_by IS NULL OR status = 'paused');
