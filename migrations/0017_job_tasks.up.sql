-- Chunked encoding (docs/design/0028-chunked-encoding.md): a long job is
-- split into tasks, each a row of jobs with parent_id set, so that claims,
-- leases, heartbeats, retries and KEDA's count treat each as a unit of work.
-- task says what the row does: 'job' (what a customer submitted), 'chunk'
-- (a range of the video), 'whole' (what is encoded over the whole input
-- once: audio, subtitles, images) or 'stitch' (the manifests from the
-- parts). task_data is what the task needs beyond its parent's columns,
-- as the splitting pod gave it and the coordinator checked it: the input's
-- probe ("media") and, for a chunk, its range and place ("chunk"). A
-- parent has at most one whole-input task, one stitch task and one task
-- per chunk index.
ALTER TABLE jobs
    ADD COLUMN parent_id uuid REFERENCES jobs (id) ON DELETE CASCADE,
    ADD COLUMN task text NOT NULL DEFAULT 'job' CHECK (task IN ('job', 'chunk', 'whole', 'stitch')),
    ADD COLUMN task_data jsonb CHECK (task_data IS NULL OR jsonb_typeof(task_data) = 'object'),
    ADD CONSTRAINT jobs_task_parent CHECK ((parent_id IS NULL) = (task = 'job')),
    ADD CONSTRAINT jobs_task_data CHECK ((task = 'job') = (task_data IS NULL)),
    ADD CONSTRAINT jobs_task_chunk CHECK (task <> 'chunk' OR jsonb_typeof(task_data -> 'chunk' -> 'index') = 'number');
CREATE INDEX jobs_parent_idx ON jobs (parent_id, task) WHERE parent_id IS NOT NULL;
CREATE UNIQUE INDEX jobs_parent_one_task ON jobs (parent_id, task) WHERE task IN ('whole', 'stitch');
CREATE UNIQUE INDEX jobs_parent_chunk ON jobs (parent_id, ((task_data -> 'chunk' ->> 'index')::int)) WHERE task = 'chunk';

-- A task's usage is the customer's usage (its seconds count), but the job
-- counts are of what they submitted: parent_job_id marks a task's record.
ALTER TABLE usage_records ADD COLUMN parent_job_id uuid;
