package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/mpegflow/mpegflow/internal/store"
)

// UsageDay is one UTC day of the organization's usage (the server's own
// type).
type UsageDay = store.UsageDay

// Usage is the organization's usage per UTC day from From to To
// (YYYY-MM-DD, both included).
type Usage struct {
	From string     `json:"from"`
	To   string     `json:"to"`
	Days []UsageDay `json:"days"`
}

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
