package store_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/store"
)

func TestSeedPlatformPolicyOnlyWhenAbsent(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	_, err := s.GetPlatformPolicy(ctx)
	require.ErrorIs(t, err, store.ErrNotFound, "a fresh database has no policy")

	configured := apiv1.DefaultPlatformPolicy()
	seeded, err := s.SeedPlatformPolicy(ctx, configured)
	require.NoError(t, err)
	assert.True(t, seeded)
	got, err := s.GetPlatformPolicy(ctx)
	require.NoError(t, err)
	assert.Equal(t, configured, got.Policy)
	assert.Nil(t, got.UpdatedBy, "seeded, not PUT by anyone")

	// A restart with other configuration keeps what is stored.
	other := apiv1.DefaultPlatformPolicy()
	other.Plans["free"] = other.Plans["enterprise"]
	seeded, err = s.SeedPlatformPolicy(ctx, other)
	require.NoError(t, err)
	assert.False(t, seeded)
	got, err = s.GetPlatformPolicy(ctx)
	require.NoError(t, err)
	assert.Equal(t, configured, got.Policy)

	// So does one after a SuperAdmin's PUT.
	b := bootstrap(t, s, "Platform")
	put, err := s.PutPlatformPolicy(ctx, other, b.User.ID)
	require.NoError(t, err)
	require.NotNil(t, put.UpdatedBy)
	assert.Equal(t, b.User.ID, *put.UpdatedBy)
	seeded, err = s.SeedPlatformPolicy(ctx, configured)
	require.NoError(t, err)
	assert.False(t, seeded)
	got, err = s.GetPlatformPolicy(ctx)
	require.NoError(t, err)
	assert.Equal(t, other, got.Policy)
}

func TestCheckPolicyRefusesTheNewestPools(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	pro, ent := bootstrap(t, s, "Pro"), bootstrap(t, s, "Ent")
	for _, o := range []struct {
		b    store.Bootstrap
		plan string
	}{{pro, "pro"}, {ent, "enterprise"}} {
		_, err := s.UpdateOrg(ctx, o.b.Org.ID, store.OrgPatch{Plan: &o.plan})
		require.NoError(t, err)
	}
	set := store.DefaultPoolSettings()
	set.Name, set.MaxReplicas = "p", 15
	var proPools []string
	for range 3 {
		p, err := s.CreatePool(ctx, pro.Org.ID, set)
		require.NoError(t, err)
		proPools = append(proPools, p.ID)
	}
	entPool, err := s.CreatePool(ctx, ent.Org.ID, set)
	require.NoError(t, err)

	pools, err := s.ListPolicyPools(ctx)
	require.NoError(t, err)
	require.Len(t, pools, 4, "the shared pool is not the policy's")
	// Default pro: at most 40 replicas together, so the third pool (45) is out.
	got := store.CheckPolicy(apiv1.DefaultPlatformPolicy(), pools)
	require.Len(t, got, 1, "%v", got)
	require.Contains(t, got, proPools[2])
	assert.Equal(t, apiv1.RuleMaxReplicasPerOrg, got[proPools[2]][0].Rule)
	assert.NotContains(t, got, entPool.ID)

	texts := map[string]string{proPools[2]: got[proPools[2]].String()}
	require.NoError(t, s.RecordPolicyViolations(ctx, texts))
	row, err := s.GetPool(ctx, store.PoolScope{OrgID: pro.Org.ID}, proPools[2])
	require.NoError(t, err)
	require.NotNil(t, row.PolicyViolation)
	assert.Equal(t, texts[proPools[2]], *row.PolicyViolation)
	require.NotNil(t, row.PolicyViolationAt)
	row, err = s.GetPool(ctx, store.PoolScope{OrgID: pro.Org.ID}, proPools[0])
	require.NoError(t, err)
	assert.Nil(t, row.PolicyViolation)

	require.NoError(t, s.RecordPolicyViolations(ctx, map[string]string{}))
	row, err = s.GetPool(ctx, store.PoolScope{OrgID: pro.Org.ID}, proPools[2])
	require.NoError(t, err)
	assert.Nil(t, row.PolicyViolation, "a complying pool's record clears")
	assert.Nil(t, row.PolicyViolationAt)
}
