package store

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The states of an asset's multipart upload (assets.upload_status).
const (
	UploadUploading = "uploading"
	UploadUploaded  = "uploaded"
	UploadAborted   = "aborted"
	UploadExpired   = "expired"
)

// UploadingAsset is a new asset whose bytes arrive through a multipart
// upload that storage has already opened (UploadID).
type UploadingAsset struct {
	ID          uuid.UUID
	OrgID       uuid.UUID
	Filename    string
	ContentType string
	SizeBytes   int64
	PartSize    int64
	ObjectKey   string
	UploadID    string
}

// NewAssetID returns the id of an asset about to be created: the object key
// derives from it, and storage opens the multipart upload under that key
// before the row is written (no network I/O inside a transaction).
func NewAssetID() uuid.UUID { return newID() }

// CreateUploadingAsset records an asset whose multipart upload is open.
func (s *Store) CreateUploadingAsset(ctx context.Context, a UploadingAsset) (Asset, error) {
	rows, _ := s.pool.Query(ctx, `INSERT INTO assets (id, org_id, filename, content_type, size_bytes, object_key, upload_status, upload_id, part_size)
		VALUES ($1, $2, $3, $4, $5, $6, 'uploading', $7, $8) RETURNING `+assetColumns,
		a.ID, a.OrgID, a.Filename, a.ContentType, a.SizeBytes, a.ObjectKey, a.UploadID, a.PartSize)
	out, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Asset])
	return out, mapErr(err, "asset")
}

// EndUpload moves the organization's asset from uploading to status
// (UploadUploaded, UploadAborted) if its upload is still uploadID. An
// uploaded asset forgets the upload id (storage completed it); an aborted
// one keeps it until ClearUploadID, so the Stale Upload Sweeper retries an
// abort that storage did not confirm. Another organization's asset is
// ErrNotFound; an upload that is no longer open is a ConflictError naming
// its state.
func (s *Store) EndUpload(ctx context.Context, orgID, id uuid.UUID, uploadID, status string) (Asset, error) {
	rows, _ := s.pool.Query(ctx, `UPDATE assets SET upload_status = $4,
			upload_id = CASE WHEN $4 = 'uploaded' THEN NULL ELSE upload_id END
		WHERE id = $1 AND org_id = $2 AND upload_status = 'uploading' AND upload_id = $3
		RETURNING `+assetColumns, id, orgID, uploadID, status)
	a, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Asset])
	if errors.Is(err, pgx.ErrNoRows) {
		cur, gerr := s.GetAsset(ctx, orgID, id)
		if gerr != nil {
			return Asset{}, gerr
		}
		return Asset{}, uploadConflict(cur)
	}
	return a, mapErr(err, "asset")
}

// uploadConflict says why an asset's upload cannot change any more.
func uploadConflict(a Asset) error {
	if a.UploadStatus == nil {
		return conflict("asset %s was not created for a multipart upload: send its bytes with the presigned PUT it came with", a.ID)
	}
	return conflict("the asset's upload is %s, no longer open; create a new asset to upload again", *a.UploadStatus)
}

// ClearUploadID records that storage no longer holds the asset's upload
// uploadID (completed or aborted there).
func (s *Store) ClearUploadID(ctx context.Context, id uuid.UUID, uploadID string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE assets SET upload_id = NULL WHERE id = $1 AND upload_id = $2 AND upload_status <> 'uploading'`, id, uploadID); err != nil {
		return mapErr(err, "asset upload")
	}
	return nil
}

// ExpireUploads marks up to limit uploads still open that were created
// before cutoff as expired, oldest first, and returns them. Rows another
// replica is changing are skipped. The uploads stay recorded (upload_id)
// until ClearUploadID: AbortableUploads lists them.
func (s *Store) ExpireUploads(ctx context.Context, cutoff time.Time, limit int) ([]Asset, error) {
	rows, _ := s.pool.Query(ctx, `UPDATE assets SET upload_status = 'expired'
		WHERE id IN (SELECT id FROM assets WHERE upload_status = 'uploading' AND created_at < $1
			ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)
		RETURNING `+assetColumns, cutoff, limit)
	as, err := pgx.CollectRows(rows, pgx.RowToStructByName[Asset])
	return as, mapErr(err, "expire uploads")
}

// AbortableUploads lists up to limit assets whose upload ended (aborted or
// expired) while storage may still hold its parts, oldest first.
func (s *Store) AbortableUploads(ctx context.Context, limit int) ([]Asset, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+assetColumns+` FROM assets
		WHERE upload_id IS NOT NULL AND upload_status IN ('aborted', 'expired')
		ORDER BY created_at LIMIT $1`, limit)
	as, err := pgx.CollectRows(rows, pgx.RowToStructByName[Asset])
	return as, mapErr(err, "abortable uploads")
}
