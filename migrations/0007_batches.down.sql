DROP INDEX IF EXISTS jobs_batch_held_idx;
DROP INDEX IF EXISTS jobs_batch_status_idx;
DROP INDEX IF EXISTS jobs_batch_input;
ALTER TABLE jobs DROP COLUMN IF EXISTS held, DROP COLUMN IF EXISTS batch_input, DROP COLUMN IF EXISTS batch_id;
DROP TABLE IF EXISTS batches;
