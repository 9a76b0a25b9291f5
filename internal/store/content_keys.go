package store

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ContentKey is the sealed content key of an encrypted job (see
// internal/contentkey for sealing). SealedKey is never the key itself.
type ContentKey struct {
	JobID     uuid.UUID `db:"job_id"`
	OrgID     uuid.UUID `db:"org_id"`
	KID       uuid.UUID `db:"kid"`
	SealedKey []byte    `db:"sealed_key"`
	CreatedAt time.Time `db:"created_at"`
}

const contentKeyColumns = `job_id, org_id, kid, sealed_key, created_at`

// EnsureContentKey stores k for its job unless the job has a key already,
// and returns the job's key either way: every claim of one job gets the
// same key. A job that is not the organization's is ErrNotFound.
func (s *Store) EnsureContentKey(ctx context.Context, k ContentKey) (ContentKey, error) {
	rows, _ := s.pool.Query(ctx, `
		WITH job AS (SELECT id, org_id FROM jobs WHERE id = $1 AND org_id = $2),
		inserted AS (
			INSERT INTO content_keys (job_id, org_id, kid, sealed_key)
			SELECT id, org_id, $3, $4 FROM job
			ON CONFLICT (job_id) DO NOTHING
			RETURNING `+contentKeyColumns+`)
		SELECT `+contentKeyColumns+` FROM inserted
		UNION ALL
		SELECT `+contentKeyColumns+` FROM content_keys WHERE job_id = $1 AND org_id = $2 AND NOT EXISTS (SELECT 1 FROM inserted)`,
		k.JobID, k.OrgID, k.KID, k.SealedKey)
	got, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[ContentKey])
	return got, mapErr(err, "content key")
}

// ContentKey returns the key of one of the organization's jobs;
// ErrNotFound when the job has none or is another organization's.
func (s *Store) ContentKey(ctx context.Context, orgID, jobID uuid.UUID) (ContentKey, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+contentKeyColumns+` FROM content_keys WHERE job_id = $1 AND org_id = $2`, jobID, orgID)
	k, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[ContentKey])
	return k, mapErr(err, "content key")
}
