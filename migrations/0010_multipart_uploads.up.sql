-- Large assets arrive through a presigned S3 multipart upload. upload_status
-- is NULL for an asset uploaded with one presigned PUT (the server does not
-- track that upload); a multipart upload is 'uploading' until the API
-- completes it ('uploaded'), the customer aborts it ('aborted') or the Stale
-- Upload Sweeper aborts it for age ('expired'). upload_id is storage's id of
-- the multipart upload while storage may still hold its parts: it is cleared
-- once the upload is completed or aborted in storage, so a sweep that
-- failed half-way is retried.
ALTER TABLE assets
    ADD COLUMN upload_status text CHECK (upload_status IN ('uploading', 'uploaded', 'aborted', 'expired')),
    ADD COLUMN upload_id     text,
    ADD COLUMN part_size     bigint CHECK (part_size > 0),
    ADD CONSTRAINT assets_multipart_shape CHECK (
        (upload_status IS NULL AND upload_id IS NULL AND part_size IS NULL)
        OR (upload_status IS NOT NULL AND part_size IS NOT NULL AND size_bytes IS NOT NULL)),
    ADD CONSTRAINT assets_uploading_has_id CHECK (upload_status <> 'uploading' OR upload_id IS NOT NULL);

-- The sweeper's scan: uploads still open in storage, oldest first.
CREATE INDEX assets_open_uploads_idx ON assets (created_at) WHERE upload_id IS NOT NULL;
