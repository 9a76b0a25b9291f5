package client

import (
	"context"
	"net/http"

	"github.com/mpegflow/mpegflow/internal/store"
)

// Organization is the caller's organization (the server's own type).
type Organization = store.Organization

// GetOrganization reads the caller's organization. Every valid key may, so
// `mpegflow login` checks a key with it.
func (c *Client) GetOrganization(ctx context.Context) (Organization, error) {
	var o Organization
	err := c.do(ctx, call{method: http.MethodGet, path: "/v1/organization", out: &o})
	return o, err
}
