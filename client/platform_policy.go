package client

import (
	"context"
	"net/http"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

// The platform policy types are the contract's own (package api/v1).
type (
	// PlatformPolicy is what each plan, and each overridden organization,
	// may do with dedicated pools.
	PlatformPolicy = apiv1.PlatformPolicy
	// PlanPolicy is the rules of one plan or one override.
	PlanPolicy = apiv1.PlanPolicy
	// PlatformPolicyDocument is the stored policy with who changed it last.
	PlatformPolicyDocument = apiv1.PlatformPolicyDocument
)

// GetPlatformPolicy reads the platform policy (SuperAdmin).
func (c *Client) GetPlatformPolicy(ctx context.Context) (PlatformPolicyDocument, error) {
	var d PlatformPolicyDocument
	err := c.do(ctx, call{method: http.MethodGet, path: "/v1/platform/policy", out: &d})
	return d, err
}

// PutPlatformPolicy replaces the platform policy (SuperAdmin); the server
// validates the whole document first.
func (c *Client) PutPlatformPolicy(ctx context.Context, p PlatformPolicy) (PlatformPolicyDocument, error) {
	var d PlatformPolicyDocument
	err := c.do(ctx, call{method: http.MethodPut, path: "/v1/platform/policy", body: p, out: &d})
	return d, err
}
