// Package backfill turns a batch's source (an S3 prefix of the tenant's own
// storage, or a manifest asset) into backfill-lane jobs: it streams the
// source in chunks from a persisted cursor, so a million inputs never sit in
// memory and a restarted expansion resumes where the last one committed, and
// it releases held jobs to Redis under a batch's concurrency and rate caps.
// docs/design/0005-backfill.md explains the choices.
package backfill
