package store

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mpegflow/mpegflow/internal/objscope"
)

// StorageGrant lets one organization name objects of a bucket other than
// the deployment's (or of a prefix of it) in job inputs and batch sources.
// Only a SuperAdmin creates or deletes grants.
type StorageGrant struct {
	ID        uuid.UUID  `db:"id"`
	OrgID     uuid.UUID  `db:"org_id"`
	Bucket    string     `db:"bucket"`
	Prefix    string     `db:"prefix"`
	GrantedBy *uuid.UUID `db:"granted_by"`
	CreatedAt time.Time  `db:"created_at"`
}

const storageGrantColumns = `id, org_id, bucket, prefix, granted_by, created_at`

// CreateStorageGrant records a grant. An unknown organization is
// ErrNotFound; the same grant twice is a conflict.
func (s *Store) CreateStorageGrant(ctx context.Context, orgID uuid.UUID, g objscope.Grant, grantedBy uuid.UUID) (StorageGrant, error) {
	rows, _ := s.pool.Query(ctx, `
		INSERT INTO storage_grants (id, org_id, bucket, prefix, granted_by)
		SELECT $1, id, $3, $4, $5 FROM organizations WHERE id = $2
		RETURNING `+storageGrantColumns, newID(), orgID, g.Bucket, g.Prefix, grantedBy)
	sg, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[StorageGrant])
	return sg, mapErr(err, "storage grant")
}

// ListStorageGrants lists an organization's grants by bucket and prefix.
func (s *Store) ListStorageGrants(ctx context.Context, orgID uuid.UUID) ([]StorageGrant, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+storageGrantColumns+` FROM storage_grants
		WHERE org_id = $1 ORDER BY bucket, prefix`, orgID)
	gs, err := pgx.CollectRows(rows, pgx.RowToStructByName[StorageGrant])
	return gs, mapErr(err, "storage grants")
}

// DeleteStorageGrant revokes one of an organization's grants. Jobs already
// queued that read from it fail when they are claimed.
func (s *Store) DeleteStorageGrant(ctx context.Context, orgID, id uuid.UUID) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM storage_grants WHERE id = $1 AND org_id = $2`, id, orgID)
	if err != nil {
		return mapErr(err, "storage grant")
	}
	if tag.RowsAffected() == 0 {
		return mapErr(pgx.ErrNoRows, "storage grant")
	}
	return nil
}

// BucketGrants is an organization's grants as its storage scope uses them.
func (s *Store) BucketGrants(ctx context.Context, orgID uuid.UUID) ([]objscope.Grant, error) {
	rows, _ := s.pool.Query(ctx, `SELECT bucket, prefix FROM storage_grants WHERE org_id = $1 ORDER BY bucket, prefix`, orgID)
	gs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[objscope.Grant])
	return gs, mapErr(err, "storage grants")
}

var _ objscope.GrantSource = (*Store)(nil)
