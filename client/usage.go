package client

import (
	"context"
	"net/http"
	"net/url"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

// The usage types are the contract's own (package api/v1).
type (
	// UsageDay is one UTC day of the organization's usage.
	UsageDay = apiv1.UsageDay
	// Usage is the organization's usage per UTC day from From to To.
	Usage = apiv1.Usage
)

// GetUsage reads usage between from and to (YYYY-MM-DD); empty means the
// server's default, the last 30 days.
func (c *Client) GetUsage(ctx context.Context, from, to string) (Usage, error) {
	q := url.Values{}
	if from != "" {
		q.Set("from", from)
	}
	if to != "" {
		q.Set("to", to)
	}
	var u Usage
	err := c.do(ctx, call{method: http.MethodGet, path: "/v1/organization/usage", query: q, out: &u})
	return u, err
}
