-- manifest_etag: the ETag of a manifest batch's manifest as the submission
-- read it. Expansion reads the manifest again with If-Match on it, so a
-- manifest overwritten after the batch was accepted (its presigned PUT
-- stays valid for a while) fails the batch instead of expanding lines that
-- the input limit, the job quota and on_error=reject never saw. NULL for
-- prefix batches and for batches accepted before this column came.
ALTER TABLE batches ADD COLUMN manifest_etag text;
