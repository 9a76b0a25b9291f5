ALTER TABLE batches DROP COLUMN manifest_etag;
