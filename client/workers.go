package client

import (
	"context"
	"net/http"
	"net/url"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

// Worker is an encode pod as the fleet view shows it (the contract's type).
type Worker = apiv1.Worker

// ListWorkers lists the workers of the organization's pools, newest first.
func (c *Client) ListWorkers(ctx context.Context) ([]Worker, error) {
	var p Page[Worker]
	err := c.do(ctx, call{method: http.MethodGet, path: "/v1/workers", out: &p})
	return nonNil(p.Items), err
}

// DrainWorker lets a worker finish its job and claim no more.
func (c *Client) DrainWorker(ctx context.Context, id string) (Worker, error) {
	return c.workerAction(ctx, id, "drain")
}

// EvictWorker stops a worker and requeues its job.
func (c *Client) EvictWorker(ctx context.Context, id string) (Worker, error) {
	return c.workerAction(ctx, id, "evict")
}

func (c *Client) workerAction(ctx context.Context, id, action string) (Worker, error) {
	var w Worker
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/workers/" + url.PathEscape(id) + "/" + action, out: &w})
	return w, err
}
