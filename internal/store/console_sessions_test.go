package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/store"
)

// TestConsoleSessions: a session acts as its key while it lasts; a
// state-changing request needs its CSRF token; revoking the key, expiry and
// signing out each end it; an unknown key signs nothing in.
func TestConsoleSessions(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")
	now := time.Now().UTC()

	_, err := s.CreateConsoleSession(ctx, b.Key+"x", now, time.Hour)
	require.ErrorIs(t, err, store.ErrNotFound, "a key that does not match signs nothing in")

	cs, err := s.CreateConsoleSession(ctx, b.Key, now, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, b.Org.ID, cs.Principal.OrgID)
	assert.NotEqual(t, cs.ID, cs.CSRF)

	p, err := s.ConsoleSessionPrincipal(ctx, cs.ID, nil, now)
	require.NoError(t, err, "a read needs no CSRF token")
	assert.Equal(t, cs.Principal, p)
	_, err = s.ConsoleSessionPrincipal(ctx, cs.ID, &cs.CSRF, now)
	require.NoError(t, err)
	for _, bad := range []string{"", cs.ID, cs.CSRF + "x"} {
		_, err = s.ConsoleSessionPrincipal(ctx, cs.ID, &bad, now)
		require.ErrorIs(t, err, store.ErrCSRF, "csrf %q", bad)
	}
	_, err = s.ConsoleSessionPrincipal(ctx, cs.CSRF, nil, now)
	require.ErrorIs(t, err, store.ErrNotFound, "the CSRF token is no session id")
	_, err = s.ConsoleSessionPrincipal(ctx, cs.ID, nil, now.Add(time.Hour+time.Second))
	require.ErrorIs(t, err, store.ErrNotFound, "expired")

	require.NoError(t, s.DeleteConsoleSession(ctx, cs.ID))
	_, err = s.ConsoleSessionPrincipal(ctx, cs.ID, nil, now)
	require.ErrorIs(t, err, store.ErrNotFound, "signed out")

	again, err := s.CreateConsoleSession(ctx, b.Key, now, time.Hour)
	require.NoError(t, err)
	_, err = s.RevokeKey(ctx, b.Org.ID, again.Principal.UserID, again.Principal.KeyID, nil)
	require.NoError(t, err)
	_, err = s.ConsoleSessionPrincipal(ctx, again.ID, nil, now)
	require.ErrorIs(t, err, store.ErrNotFound, "the key's revocation ends its sessions")
}
