-- Caption files given with a job (docs/design/0027-captions-audio-hdr.md):
-- a JSON array of {url, language, format} as the API checked and stored
-- them (storage URLs in canonical s3:// form). The coordinator checks each
-- storage URL against the job's organization again before presigning it.
ALTER TABLE jobs
    ADD COLUMN captions jsonb NOT NULL DEFAULT '[]'::jsonb
        CHECK (jsonb_typeof(captions) = 'array');
