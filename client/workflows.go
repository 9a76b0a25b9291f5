package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

// Workflow is a named, reusable encode spec of the organization (the
// contract's type).
type Workflow = apiv1.Workflow

// ListWorkflows reads one page of the organization's workflows, newest
// first (limit 0 takes the server's default page size).
func (c *Client) ListWorkflows(ctx context.Context, limit int, cursor string) (Page[Workflow], error) {
	var p Page[Workflow]
	err := c.do(ctx, call{method: http.MethodGet, path: "/v1/workflows", query: pageQuery(limit, cursor), out: &p})
	return p, err
}

// GetWorkflow reads one workflow by id.
func (c *Client) GetWorkflow(ctx context.Context, id string) (Workflow, error) {
	var w Workflow
	err := c.do(ctx, call{method: http.MethodGet, path: "/v1/workflows/" + url.PathEscape(id), out: &w})
	return w, err
}

// CreateWorkflow stores a workflow from its JSON document
// ({"name", "description", "spec"}), sent as is so the server's
// validation names every offending field.
func (c *Client) CreateWorkflow(ctx context.Context, doc json.RawMessage) (Workflow, error) {
	var w Workflow
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/workflows", body: doc, out: &w})
	return w, err
}

func pageQuery(limit int, cursor string) url.Values {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	setIf(q, "cursor", cursor)
	return q
}
