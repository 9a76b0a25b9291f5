package store_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/store"
)

func TestBootstrapOrg(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()

	b, err := s.BootstrapOrg(ctx, "Acme Media", "Ops@Acme.example", auth.Owner)
	require.NoError(t, err)
	assert.Equal(t, "Acme Media", b.Org.Name)
	assert.Equal(t, "active", b.Org.Status)
	assert.Equal(t, "Ops@Acme.example", b.User.Email)

	org, err := s.GetOrg(ctx, b.Org.ID)
	require.NoError(t, err)
	assert.Equal(t, b.Org.ID, org.ID)

	members, err := s.ListMembers(ctx, b.Org.ID)
	require.NoError(t, err)
	require.Len(t, members, 1)
	assert.Equal(t, b.User.ID, members[0].UserID)
	assert.Equal(t, auth.Owner, members[0].Role)

	keys, err := s.ListKeys(ctx, b.Org.ID, b.User.ID)
	require.NoError(t, err)
	require.Len(t, keys, 1)
	assert.Equal(t, "bootstrap", keys[0].Name)
	prefix, err := auth.KeyPrefix(b.Key)
	require.NoError(t, err, "the bootstrap key is a well-formed key")
	assert.Equal(t, prefix, keys[0].Prefix)
	assert.Nil(t, keys[0].LastUsedAt)
	assert.Equal(t, 0, count(t, db, `SELECT count(*) FROM api_keys WHERE position($1 in encode(hash, 'escape')) > 0`, b.Key),
		"the key itself is never stored")

	p, err := s.Authenticate(ctx, b.Key)
	require.NoError(t, err)
	want := store.Principal{KeyID: keys[0].ID, OrgID: b.Org.ID, UserID: b.User.ID, Role: auth.Owner, OrgStatus: "active", ShareWeight: 1}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("principal (-want +got):\n%s", diff)
	}

	keys, err = s.ListKeys(ctx, b.Org.ID, b.User.ID)
	require.NoError(t, err)
	require.NotNil(t, keys[0].LastUsedAt, "authenticating records last_used_at")

	// The same person bootstrapping a second organization is one user with
	// two memberships, and each key resolves to its own organization.
	b2, err := s.BootstrapOrg(ctx, "Acme Labs", "ops@acme.example", auth.Admin)
	require.NoError(t, err)
	assert.Equal(t, b.User.ID, b2.User.ID)
	p2, err := s.Authenticate(ctx, b2.Key)
	require.NoError(t, err)
	assert.Equal(t, b2.Org.ID, p2.OrgID)
	assert.Equal(t, auth.Admin, p2.Role)
}

func TestBootstrapOrgIsOneTransaction(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)

	// The membership insert fails (the role is not allowed) after the
	// organization and the user were inserted: nothing may remain.
	_, err := s.BootstrapOrg(t.Context(), "Half Made", "half@example.com", auth.Role("root"))
	require.Error(t, err)
	assert.Equal(t, 0, count(t, db, `SELECT count(*) FROM organizations`))
	assert.Equal(t, 0, count(t, db, `SELECT count(*) FROM users`))
	assert.Equal(t, 0, count(t, db, `SELECT count(*) FROM memberships`))
	assert.Equal(t, 0, count(t, db, `SELECT count(*) FROM api_keys`))
}

func TestAuthenticateRejects(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")

	revoked, rec, err := s.CreateKey(ctx, b.Org.ID, b.User.ID, "ci", nil)
	require.NoError(t, err)
	_, err = s.Authenticate(ctx, revoked)
	require.NoError(t, err, "the key works before it is revoked")
	got, err := s.RevokeKey(ctx, b.Org.ID, b.User.ID, rec.ID, nil)
	require.NoError(t, err)
	require.NotNil(t, got.RevokedAt)
	again, err := s.RevokeKey(ctx, b.Org.ID, b.User.ID, rec.ID, nil)
	require.NoError(t, err, "revoking twice is a no-op")
	assert.True(t, got.RevokedAt.Equal(*again.RevokedAt), "the first revocation time stays")

	prefix, err := auth.KeyPrefix(b.Key)
	require.NoError(t, err)
	wrongSecret := prefix + "_" + strings.Repeat("a", 32)
	unknown, _, _ := auth.NewKey()

	tests := map[string]string{
		"revoked key":                    revoked,
		"wrong secret with valid prefix": wrongSecret,
		"unknown well-formed key":        unknown,
		"garbage":                        "hunter2",
		"empty":                          "",
		"bearer header":                  "Bearer " + b.Key,
		"key with trailing space":        b.Key + " ",
		"prefix only":                    prefix,
	}
	// The group returns once its parallel cases have finished.
	t.Run("cases", func(t *testing.T) {
		for name, key := range tests {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				p, err := s.Authenticate(ctx, key)
				require.ErrorIs(t, err, store.ErrNotFound)
				assert.Zero(t, p)
			})
		}
	})
	// A failed attempt does not count as a use of the key whose prefix it
	// carries.
	assert.Equal(t, 0, count(t, db, `SELECT count(*) FROM api_keys WHERE prefix = $1 AND last_used_at IS NOT NULL`, prefix))
}

func TestAuthenticateRefreshesStaleLastUsed(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")

	_, err := db.Exec(ctx, `UPDATE api_keys SET last_used_at = '2001-01-01T00:00:00Z' WHERE org_id = $1`, b.Org.ID)
	require.NoError(t, err)
	_, err = s.Authenticate(ctx, b.Key)
	require.NoError(t, err)
	assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM api_keys WHERE org_id = $1 AND last_used_at > now() - interval '1 hour'`, b.Org.ID))
}

func TestAuthenticateReportsSuspendedOrg(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")

	_, err := s.SetOrgStatus(ctx, b.Org.ID, "suspended")
	require.NoError(t, err)
	p, err := s.Authenticate(ctx, b.Key)
	require.NoError(t, err)
	assert.Equal(t, "suspended", p.OrgStatus, "the caller decides what a suspended org may do")
}

func TestRevokeKeyOfAnotherMember(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	a := bootstrap(t, s, "Acme")
	other := bootstrap(t, s, "Other")

	_, rec, err := s.CreateKey(ctx, a.Org.ID, a.User.ID, "ci", nil)
	require.NoError(t, err)
	_, err = s.RevokeKey(ctx, other.Org.ID, other.User.ID, rec.ID, nil)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.RevokeKey(ctx, other.Org.ID, a.User.ID, rec.ID, nil)
	require.ErrorIs(t, err, store.ErrNotFound)
}
