package client

import (
	"context"
	"net/http"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

// Organization is the caller's organization (the contract's type).
type Organization = apiv1.Organization

// GetOrganization reads the caller's organization. Every valid key may, so
// `mpegflow login` checks a key with it.
func (c *Client) GetOrganization(ctx context.Context) (Organization, error) {
	var o Organization
	err := c.do(ctx, call{method: http.MethodGet, path: "/v1/organization", out: &o})
	return o, err
}
