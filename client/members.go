package client

import (
	"context"
	"net/http"
	"net/url"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

// The member and key types are the contract's own (package api/v1).
type (
	// Member is a user of the organization with a role.
	Member = apiv1.Member
	// APIKey is one of a user's keys (never the secret after creation).
	APIKey = apiv1.APIKey
	// MemberRequest adds a member: an email and a role (viewer, editor,
	// admin, owner); Name is what the organization calls them.
	MemberRequest = apiv1.MemberRequest
	// MemberPatch changes the fields that are set.
	MemberPatch = apiv1.MemberPatch
	// CreatedAPIKey is a new key with its secret, which the server shows
	// this once.
	CreatedAPIKey = apiv1.APIKeyCreated
)

// ListMembers lists the organization's members.
func (c *Client) ListMembers(ctx context.Context) ([]Member, error) {
	var p Page[Member]
	err := c.do(ctx, call{method: http.MethodGet, path: "/v1/members", out: &p})
	return nonNil(p.Items), err
}

// AddMember adds a user (created if new) to the organization.
func (c *Client) AddMember(ctx context.Context, req MemberRequest) (Member, error) {
	var m Member
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/members", body: req, out: &m})
	return m, err
}

// UpdateMember changes a member's role or name; userID is Member.UserID.
func (c *Client) UpdateMember(ctx context.Context, userID string, patch MemberPatch) (Member, error) {
	var m Member
	err := c.do(ctx, call{method: http.MethodPatch, path: "/v1/members/" + url.PathEscape(userID), body: patch, out: &m})
	return m, err
}

// RemoveMember removes a member and revokes their keys in the organization.
func (c *Client) RemoveMember(ctx context.Context, userID string) error {
	return c.do(ctx, call{method: http.MethodDelete, path: "/v1/members/" + url.PathEscape(userID)})
}

// ListAPIKeys lists the caller's own keys, revoked ones included.
func (c *Client) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	var p Page[APIKey]
	err := c.do(ctx, call{method: http.MethodGet, path: "/v1/api-keys", out: &p})
	return nonNil(p.Items), err
}

// CreateAPIKey creates a key for the caller, named name.
func (c *Client) CreateAPIKey(ctx context.Context, name string) (CreatedAPIKey, error) {
	var k CreatedAPIKey
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/api-keys", body: apiv1.APIKeyRequest{Name: name}, out: &k})
	return k, err
}

// RevokeAPIKey revokes one of the caller's keys.
func (c *Client) RevokeAPIKey(ctx context.Context, id string) (APIKey, error) {
	var k APIKey
	err := c.do(ctx, call{method: http.MethodDelete, path: "/v1/api-keys/" + url.PathEscape(id), out: &k})
	return k, err
}

// nonNil makes an absent list an empty one, so -o json prints [].
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
