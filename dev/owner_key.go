package dev

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/mpegflow/mpegflow/dev/stack"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/store"
)

// devOwnerKey returns the key in DATA/owner-key, bootstrapping the Local
// organization on the first run.
func devOwnerKey(ctx context.Context, st *store.Store, dir string, log *slog.Logger) (string, error) {
	key, ok, err := stack.ReadOwnerKey(dir)
	if err != nil {
		return "", err
	}
	if ok {
		if _, err := st.Authenticate(ctx, key); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return "", fmt.Errorf("the key in %s no longer authenticates (revoked, or the database was replaced): delete that file and restart to bootstrap a new organization",
					filepath.Join(dir, stack.OwnerKeyFile))
			}
			return "", fmt.Errorf("check the owner key: %w", err)
		}
		return key, nil
	}
	b, err := st.BootstrapOrg(ctx, devOrg, devOwnerEmail, auth.Owner)
	if err != nil {
		return "", err
	}
	// One person on one machine: the dev organization is on enterprise, so
	// the platform policy lets it try dedicated and GPU pools.
	enterprise := "enterprise"
	if _, err := st.UpdateOrg(ctx, b.Org.ID, store.OrgPatch{Plan: &enterprise}); err != nil {
		return "", fmt.Errorf("put the dev organization on the enterprise plan: %w", err)
	}
	if err := stack.WriteOwnerKey(dir, b.Key); err != nil {
		return "", fmt.Errorf("%w (the key, shown once: %s)", err, b.Key)
	}
	log.InfoContext(ctx, "bootstrapped the organization", slog.String("org", devOrg), slog.String("org_id", b.Org.ID.String()), slog.String("owner", devOwnerEmail))
	return b.Key, nil
}
