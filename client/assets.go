package client

import (
	"context"
	"net/http"
	"net/url"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

// The asset types are the contract's own (package api/v1).
type (
	// Asset is a source file the organization stored. Upload is set right
	// after CreateAsset (a presigned PUT), Download when read with GetAsset
	// (a presigned GET).
	Asset = apiv1.Asset
	// AssetRequest describes a file about to be uploaded; SizeBytes is
	// required: the upload URL admits exactly that many bytes.
	AssetRequest = apiv1.AssetRequest
)

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
