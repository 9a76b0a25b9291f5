ALTER TABLE usage_records DROP COLUMN parent_job_id;
DELETE FROM jobs WHERE parent_id IS NOT NULL;
DROP INDEX jobs_parent_chunk;
DROP INDEX jobs_parent_one_task;
DROP INDEX jobs_parent_idx;
ALTER TABLE jobs
    DROP CONSTRAINT jobs_task_chunk,
    DROP CONSTRAINT jobs_task_data,
    DROP CONSTRAINT jobs_task_parent,
    DROP COLUMN task_data,
    DROP COLUMN task,
    DROP COLUMN parent_id;
