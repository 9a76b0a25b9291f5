-- resumed_at: when the pool last left a pause, by hand or by its schedule
-- (NULL: not paused since this column came). A job queued before a pause
-- could not be claimed until then, so the coordinator measures its wait
-- for dispatch from the later of its updated_at and this
-- (mpegflow_job_dispatch_duration_seconds). A trigger sets it, so every
-- path that resumes a pool does.
ALTER TABLE worker_pools ADD COLUMN resumed_at timestamptz;

CREATE FUNCTION mpegflow_worker_pools_resumed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'paused' AND NEW.status <> 'paused' THEN
        NEW.resumed_at := now();
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER worker_pools_resumed
BEFORE UPDATE OF status ON worker_pools
FOR EACH ROW EXECUTE FUNCTION mpegflow_worker_pools_resumed();
