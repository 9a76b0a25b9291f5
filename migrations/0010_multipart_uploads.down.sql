DROP INDEX assets_open_uploads_idx;
ALTER TABLE assets
    DROP CONSTRAINT assets_uploading_has_id,
    DROP CONSTRAINT assets_multipart_shape,
    DROP COLUMN part_size,
    DROP COLUMN upload_id,
    DROP COLUMN upload_status;
