package client

import (
	"context"
	"net/http"
	"net/url"
	"time"

	v1 "github.com/mpegflow/mpegflow/api/v1"
)

// Asset is a source file the organization stored. Upload is set right
// after CreateAsset (a presigned PUT), Download when read with GetAsset (a
// presigned GET).
type Asset struct {
	ID          string        `json:"id"`
	Filename    string        `json:"filename"`
	ContentType string        `json:"content_type"`
	SizeBytes   *int64        `json:"size_bytes"`
	CreatedAt   time.Time     `json:"created_at"`
	Upload      *PresignedURL `json:"upload,omitempty"`
	Download    *PresignedURL `json:"download,omitempty"`
	// UploadStatus is set for an asset uploaded in parts: uploading,
	// uploaded, aborted or expired. PartSize is the size of its parts.
	UploadStatus string `json:"upload_status,omitempty"`
	PartSize     *int64 `json:"part_size,omitempty"`
	// Multipart replaces Upload for an asset above the server's multipart
	// threshold: UploadAsset sends it in parts.
	Multipart *v1.MultipartUpload `json:"multipart,omitempty"`
}

// AssetRequest describes a file about to be uploaded. Filename is a bare
// name (no directories); ContentType defaults to application/octet-stream.
// SizeBytes is required and at least 1: the upload URL admits exactly that
// many bytes.
type AssetRequest struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type,omitempty"`
	SizeBytes   *int64 `json:"size_bytes,omitempty"`
}

// CreateAsset records an asset and returns it with a presigned PUT (or, for
// a large one, a multipart upload): send the bytes with UploadAsset, then
// submit a job with its ID.
func (c *Client) CreateAsset(ctx context.Context, req AssetRequest) (Asset, error) {
	var a Asset
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/assets", body: req, out: &a})
	return a, err
}

// GetAsset reads an asset with a fresh presigned GET.
func (c *Client) GetAsset(ctx context.Context, id string) (Asset, error) {
	var a Asset
	err := c.do(ctx, call{method: http.MethodGet, path: "/v1/assets/" + url.PathEscape(id), out: &a})
	return a, err
}

// ListAssets reads one page of assets, newest first.
func (c *Client) ListAssets(ctx context.Context, limit int, cursor string) (Page[Asset], error) {
	var p Page[Asset]
	err := c.do(ctx, call{method: http.MethodGet, path: "/v1/assets", query: pageQuery(limit, cursor), out: &p})
	return p, err
}
