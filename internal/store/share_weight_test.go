package store_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/store"
)

// TestShareWeights: an organization's weight is its override, else its
// plan's default; the column refuses weights outside 1–100; unknown ids
// are left out. A key's principal carries the same weight (the submit
// path queues with it).
func TestShareWeights(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	free := bootstrap(t, s, "Free").Org
	proBoot := bootstrap(t, s, "Pro")
	pro := proBoot.Org
	plan := "pro"
	_, err := s.UpdateOrg(ctx, pro.ID, store.OrgPatch{Plan: &plan})
	require.NoError(t, err)
	customBoot := bootstrap(t, s, "Custom")
	custom := customBoot.Org
	seven := 7
	org, err := s.AdminUpdateOrg(ctx, custom.ID, store.OrgAdminPatch{SetShareWeight: true, ShareWeight: &seven})
	require.NoError(t, err)
	require.Equal(t, &seven, org.ShareWeight)

	for name, w := range map[string]int{"zero": 0, "above 100": 101} {
		_, err := s.AdminUpdateOrg(ctx, free.ID, store.OrgAdminPatch{SetShareWeight: true, ShareWeight: &w})
		require.Error(t, err, name)
	}
	_, err = s.AdminUpdateOrg(ctx, uuid.New(), store.OrgAdminPatch{SetShareWeight: true, ShareWeight: &seven})
	require.ErrorIs(t, err, store.ErrNotFound)

	got, err := s.ShareWeights(ctx, []uuid.UUID{free.ID, pro.ID, custom.ID, uuid.New()})
	require.NoError(t, err)
	require.Equal(t, map[uuid.UUID]int{free.ID: 1, pro.ID: 2, custom.ID: 7}, got)
	for key, want := range map[string]int{proBoot.Key: 2, customBoot.Key: 7} {
		p, err := s.Authenticate(ctx, key)
		require.NoError(t, err)
		require.Equal(t, want, p.ShareWeight, "the principal of a key of %s", p.OrgID)
	}

	org, err = s.AdminUpdateOrg(ctx, custom.ID, store.OrgAdminPatch{SetShareWeight: true, ShareWeight: nil})
	require.NoError(t, err)
	require.Nil(t, org.ShareWeight)
	got, err = s.ShareWeights(ctx, []uuid.UUID{custom.ID})
	require.NoError(t, err)
	require.Equal(t, map[uuid.UUID]int{custom.ID: 1}, got, "back to the free plan's default")
	p, err := s.Authenticate(ctx, customBoot.Key)
	require.NoError(t, err)
	require.Equal(t, 1, p.ShareWeight, "the principal follows")
}
