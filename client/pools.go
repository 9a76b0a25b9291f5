package client

import (
	"context"
	"net/http"
	"net/url"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

// The pool types are the contract's own (package api/v1).
type (
	// Pool is a set of encode workers and its scaling settings. QueueDepth
	// (jobs waiting per lane) is filled by GetPool and the pool actions,
	// not by ListPools.
	Pool = apiv1.Pool
	// PoolSettings are a pool's scaling settings.
	PoolSettings = apiv1.PoolSettings
	// CronWindow holds a pool at DesiredReplicas between two cron times.
	CronWindow = apiv1.CronWindow
	// Resources are the Kubernetes requests and limits of the pool's pods.
	Resources = apiv1.Resources
	// Toleration lets the pool's pods run on tainted nodes.
	Toleration = apiv1.Toleration
)

// ListPools lists the pools the caller can submit to: the organization's
// and the shared default pool.
func (c *Client) ListPools(ctx context.Context) ([]Pool, error) {
	var p Page[Pool]
	if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/pools", out: &p}); err != nil {
		return nil, err
	}
	if p.Items == nil {
		p.Items = []Pool{}
	}
	return p.Items, nil
}

// GetPool reads a pool and its queue depth.
func (c *Client) GetPool(ctx context.Context, id string) (Pool, error) {
	return c.poolCall(ctx, http.MethodGet, id, "", nil)
}

// PausePool stops claims from the pool at once; queued jobs wait.
func (c *Client) PausePool(ctx context.Context, id string) (Pool, error) {
	return c.poolCall(ctx, http.MethodPost, id, "/pause", nil)
}

// ResumePool lets a paused pool's workers claim again.
func (c *Client) ResumePool(ctx context.Context, id string) (Pool, error) {
	return c.poolCall(ctx, http.MethodPost, id, "/resume", nil)
}

// UpdatePool changes the settings named in patch (JSON field names such as
// "max_replicas"); the others stay as they are.
func (c *Client) UpdatePool(ctx context.Context, id string, patch map[string]any) (Pool, error) {
	if patch == nil {
		patch = map[string]any{}
	}
	return c.poolCall(ctx, http.MethodPatch, id, "", patch)
}

func (c *Client) poolCall(ctx context.Context, method, id, action string, body any) (Pool, error) {
	var p Pool
	err := c.do(ctx, call{method: method, path: "/v1/pools/" + url.PathEscape(id) + action, body: body, out: &p})
	return p, err
}

// CreatePool creates a dedicated pool from settings (JSON field names such
// as "name", "accelerator", "max_replicas"); unset ones take the server's
// defaults.
func (c *Client) CreatePool(ctx context.Context, settings map[string]any) (Pool, error) {
	var p Pool
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/pools", body: settings, out: &p})
	return p, err
}

// DeletePool deletes a dedicated pool that has no unfinished jobs.
func (c *Client) DeletePool(ctx context.Context, id string) error {
	return c.do(ctx, call{method: http.MethodDelete, path: "/v1/pools/" + url.PathEscape(id)})
}
