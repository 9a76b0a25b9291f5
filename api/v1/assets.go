package apiv1

import "time"

// Asset is a source file the organization stored. Upload is set right after
// POST /v1/assets (a presigned PUT), Download when read with
// GET /v1/assets/{id} (a presigned GET); the list carries neither.
type Asset struct {
	ID          string `json:"id"`
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	// SizeBytes is the declared size; null for an asset made before sizes
	// were required.
	SizeBytes *int64        `json:"size_bytes"`
	CreatedAt time.Time     `json:"created_at"`
	Upload    *PresignedURL `json:"upload,omitempty"`
	Download  *PresignedURL `json:"download,omitempty"`
	// UploadStatus is set for an asset uploaded in parts: uploading,
	// uploaded, aborted or expired. PartSize is the size of every part but
	// the last; a client resuming the upload cuts its file with it.
	UploadStatus string `json:"upload_status,omitempty" enum:"uploading,uploaded,aborted,expired"`
	PartSize     *int64 `json:"part_size,omitempty"`
	// Multipart replaces Upload, right after POST /v1/assets, for an asset
	// above the server's multipart threshold: its bytes go up in parts.
	Multipart *MultipartUpload `json:"multipart,omitempty"`
}

// AssetRequest is the body of POST /v1/assets: a file about to be
// uploaded. Filename is a bare name (no directories); ContentType defaults
// to application/octet-stream. SizeBytes is required and at least 1: the
// upload URL admits exactly that many bytes.
type AssetRequest struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type,omitempty"`
	// SizeBytes is a pointer so that a missing size differs from zero.
	SizeBytes *int64 `json:"size_bytes" openapi:"required"`
}
