DROP INDEX jobs_parts_pending;
ALTER TABLE jobs DROP COLUMN parts_pending;
