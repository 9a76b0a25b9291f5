package store_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/store"
)

// TestShareWeights: an organization's weight is its override, else its
// plan's default; the column refuses weights outside 1–100; unknown ids
// are left out.
func TestShareWeights(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	free := bootstrap(t, s, "Free").Org
	pro := bootstrap(t, s, "Pro").Org
	plan := "pro"
	_, err := s.UpdateOrg(ctx, pro.ID, store.OrgPatch{Plan: &plan})
	require.NoError(t, err)
	custom := bootstrap(t, s, "Custom").Org
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

	org, err = s.AdminUpdateOrg(ctx, custom.ID, store.OrgAdminPatch{SetShareWeight: true, ShareWeight: nil})
	require.NoError(t, err)
	require.Nil(t, org.ShareWeight)
	got, err = s.ShareWeights(ctx, []uuid.UUID{custom.ID})
	require.NoError(t, err)
	require.Equal(t, map[uuid.UUID]int{custom.ID: 1}, got, "back to the free plan's default")
}
