-- Chunked encoding leaves files behind until they are dropped: each part's
-- files under the job's tasks/ prefix, and, when the job did not complete,
-- the segments its chunks wrote at the job's own output keys. A split job
-- owes that clean-up from its split until it is done (parts_pending); the
-- coordinator drops them when the job completes or fails and its recovery
-- loop sweeps what remains (a job cancelled through the API, a coordinator
-- that stopped first) once no pod can still be uploading.
ALTER TABLE jobs ADD COLUMN parts_pending boolean NOT NULL DEFAULT false;
CREATE INDEX jobs_parts_pending ON jobs (finished_at) WHERE parts_pending;
