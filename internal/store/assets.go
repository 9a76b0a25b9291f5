package store

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Asset is an object a customer uploaded (or is uploading) to our storage.
type Asset struct {
	ID          uuid.UUID `db:"id"`
	OrgID       uuid.UUID `db:"org_id"`
	Filename    string    `db:"filename"`
	ContentType string    `db:"content_type"`
	SizeBytes   *int64    `db:"size_bytes"`
	ObjectKey   string    `db:"object_key"`
	CreatedAt   time.Time `db:"created_at"`
	// UploadStatus is nil for an asset uploaded with one presigned PUT (the
	// server does not follow that upload) and the state of a multipart
	// upload otherwise: UploadUploading, UploadUploaded, UploadAborted or
	// UploadExpired.
	UploadStatus *string `db:"upload_status"`
	// UploadID is storage's id of the multipart upload while storage may
	// hold its parts; never shown to customers, who name the asset.
	UploadID *string `db:"upload_id"`
	// PartSize is the size of every part of a multipart upload but the
	// last; a client resuming the upload cuts its file with it.
	PartSize *int64 `db:"part_size"`
}

const assetColumns = `id, org_id, filename, content_type, size_bytes, object_key, created_at, upload_status, upload_id, part_size`

// CreateAsset records an asset; objectKey derives the storage key from the
// new id so keys never collide and never carry user-chosen paths.
func (s *Store) CreateAsset(ctx context.Context, orgID uuid.UUID, filename, contentType string, size *int64, objectKey func(id uuid.UUID) string) (Asset, error) {
	id := newID()
	rows, _ := s.pool.Query(ctx, `INSERT INTO assets (id, org_id, filename, content_type, size_bytes, object_key)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+assetColumns, id, orgID, filename, contentType, size, objectKey(id))
	a, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Asset])
	return a, mapErr(err, "asset")
}

// GetAsset returns one of the organization's assets.
func (s *Store) GetAsset(ctx context.Context, orgID, id uuid.UUID) (Asset, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+assetColumns+` FROM assets WHERE id = $1 AND org_id = $2`, id, orgID)
	a, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Asset])
	return a, mapErr(err, "asset")
}

// ListAssets lists the organization's assets, newest first.
func (s *Store) ListAssets(ctx context.Context, orgID uuid.UUID, page Page) ([]Asset, error) {
	after, afterID := page.cursor()
	rows, _ := s.pool.Query(ctx, `SELECT `+assetColumns+` FROM assets
		WHERE org_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
		ORDER BY created_at DESC, id DESC LIMIT $4`, orgID, after, afterID, page.limit())
	as, err := pgx.CollectRows(rows, pgx.RowToStructByName[Asset])
	return as, mapErr(err, "assets")
}

// assetInUse refuses to let go of an asset that is the input of unfinished
// jobs.
func assetInUse(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, orgID, id uuid.UUID) error {
	var active int
	if err := q.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE input_asset_id = $1 AND org_id = $2
		AND status IN ('queued', 'running', 'retry_wait')`, id, orgID).Scan(&active); err != nil {
		return mapErr(err, "asset jobs")
	}
	if active > 0 {
		return conflict("asset is the input of %d unfinished jobs; cancel them or let them finish first", active)
	}
	return nil
}

// DeletableAsset returns the organization's asset when nothing stops its
// deletion: the caller removes its object from storage, then calls
// DeleteAsset. It is ErrNotFound for another organization's asset and
// ErrConflict while the asset is the input of unfinished jobs.
func (s *Store) DeletableAsset(ctx context.Context, orgID, id uuid.UUID) (Asset, error) {
	a, err := s.GetAsset(ctx, orgID, id)
	if err != nil {
		return Asset{}, err
	}
	if err := assetInUse(ctx, s.pool, orgID, id); err != nil {
		return Asset{}, err
	}
	return a, nil
}

// DeleteAsset deletes the asset's row; finished jobs that read it keep
// their history (their input_asset_id becomes NULL). It checks again, in
// its transaction, that no unfinished job reads the asset: one submitted
// since DeletableAsset keeps the row (ErrConflict). Storage is the
// caller's business and happens outside any transaction.
func (s *Store) DeleteAsset(ctx context.Context, orgID, id uuid.UUID) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		// The row lock waits for a job being inserted with this input (its
		// foreign key holds a share lock) and keeps new ones out until the
		// row is gone, so the count below cannot miss one.
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM assets WHERE id = $1 AND org_id = $2 FOR UPDATE`, id, orgID).Scan(&one); err != nil {
			return mapErr(err, "asset")
		}
		if err := assetInUse(ctx, tx, orgID, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM assets WHERE id = $1 AND org_id = $2`, id, orgID)
		return mapErr(err, "asset")
	})
}
