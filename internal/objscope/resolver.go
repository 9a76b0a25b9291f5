package objscope

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/google/uuid"
)

// GrantSource lists the buckets a SuperAdmin granted to an organization
// (the store implements it).
type GrantSource interface {
	BucketGrants(ctx context.Context, orgID uuid.UUID) ([]Grant, error)
}

// Resolver builds organizations' scopes over one deployment's storage. The
// API, the coordinator and the batch expander each hold one.
type Resolver struct {
	storage Storage
	grants  GrantSource
}

// NewResolver checks storage and returns a Resolver.
func NewResolver(storage Storage, grants GrantSource) (*Resolver, error) {
	if storage.Bucket == "" {
		return nil, errors.New("objscope: the deployment's bucket is required")
	}
	if storage.Endpoint != "" {
		if u, err := url.Parse(storage.Endpoint); err != nil || u.Host == "" {
			return nil, fmt.Errorf("objscope: storage endpoint %q is not an absolute URL", storage.Endpoint)
		}
	}
	return &Resolver{storage: storage, grants: grants}, nil
}

// Storage is the deployment's storage the resolver scopes.
func (r *Resolver) Storage() Storage { return r.storage }

// Own is orgID's scope without its grants: enough for keys of the
// deployment's bucket (asset and output keys), and read from nothing.
func (r *Resolver) Own(orgID uuid.UUID) Scope {
	return Scope{OrgID: orgID, Storage: r.storage}
}

// Scope is orgID's whole scope, with the grants it holds now.
func (r *Resolver) Scope(ctx context.Context, orgID uuid.UUID) (Scope, error) {
	grants, err := r.grants.BucketGrants(ctx, orgID)
	if err != nil {
		return Scope{}, fmt.Errorf("storage grants of organization %s: %w", orgID, err)
	}
	s := r.Own(orgID)
	s.Grants = grants
	return s, nil
}

// Reference is Scope.Reference for orgID. It reads the organization's
// grants only when its own storage does not admit raw, so the common case
// (its own objects, ordinary URLs) costs no query. Errors other than a
// *Refusal are failures to read the grants.
func (r *Resolver) Reference(ctx context.Context, orgID uuid.UUID, raw string) (ref Ref, isRef bool, err error) {
	ref, isRef, err = r.Own(orgID).Reference(raw)
	if !errors.Is(err, ErrRefused) {
		return ref, isRef, err
	}
	s, serr := r.Scope(ctx, orgID)
	if serr != nil {
		return Ref{}, false, serr
	}
	if len(s.Grants) == 0 {
		return ref, isRef, err
	}
	return s.Reference(raw)
}
