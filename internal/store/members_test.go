package store_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/store"
)

func TestAddMember(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")

	m, err := s.AddMember(ctx, b.Org.ID, "ed@example.com", "Ed", auth.Editor)
	require.NoError(t, err)
	assert.Equal(t, "ed@example.com", m.Email)
	assert.Equal(t, "Ed", m.Name)
	assert.Equal(t, auth.Editor, m.Role)

	got, err := s.GetMember(ctx, b.Org.ID, m.UserID)
	require.NoError(t, err)
	assert.Equal(t, m.UserID, got.UserID)
	assert.Equal(t, auth.Editor, got.Role)

	_, err = s.AddMember(ctx, b.Org.ID, "ed@example.com", "Ed", auth.Viewer)
	require.ErrorIs(t, err, store.ErrConflict, "adding the same member twice")
	_, err = s.AddMember(ctx, b.Org.ID, "ED@Example.COM", "", auth.Admin)
	require.ErrorIs(t, err, store.ErrConflict, "emails are case-insensitive")

	got, err = s.GetMember(ctx, b.Org.ID, m.UserID)
	require.NoError(t, err)
	assert.Equal(t, auth.Editor, got.Role, "a refused add changes nothing")

	members, err := s.ListMembers(ctx, b.Org.ID)
	require.NoError(t, err)
	assert.Len(t, members, 2)

	// The same user may join another organization.
	other := bootstrap(t, s, "Other")
	m2, err := s.AddMember(ctx, other.Org.ID, "ed@example.com", "", auth.Viewer)
	require.NoError(t, err)
	assert.Equal(t, m.UserID, m2.UserID)
	assert.Empty(t, m2.Name, "the name is per organization")
}

func TestLastOwnerIsKept(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")
	owner := b.User.ID
	ed, err := s.AddMember(ctx, b.Org.ID, "ed@example.com", "Ed", auth.Admin)
	require.NoError(t, err)

	for _, role := range []auth.Role{auth.Viewer, auth.Editor, auth.Admin, auth.SuperAdmin} {
		_, err := s.SetMemberRole(ctx, b.Org.ID, owner, role)
		require.ErrorIs(t, err, store.ErrConflict, "demoting the last owner to %s", role)
	}
	require.ErrorIs(t, s.RemoveMember(ctx, b.Org.ID, owner), store.ErrConflict, "removing the last owner")
	got, err := s.GetMember(ctx, b.Org.ID, owner)
	require.NoError(t, err, "the refused removal was rolled back")
	assert.Equal(t, auth.Owner, got.Role)

	// Owner to owner is not a demotion.
	_, err = s.SetMemberRole(ctx, b.Org.ID, owner, auth.Owner)
	require.NoError(t, err)

	// With a second owner, the first may be demoted and then removed.
	promoted, err := s.SetMemberRole(ctx, b.Org.ID, ed.UserID, auth.Owner)
	require.NoError(t, err)
	assert.Equal(t, auth.Owner, promoted.Role)
	demoted, err := s.SetMemberRole(ctx, b.Org.ID, owner, auth.Admin)
	require.NoError(t, err)
	assert.Equal(t, auth.Admin, demoted.Role)
	require.NoError(t, s.RemoveMember(ctx, b.Org.ID, owner))
	_, err = s.GetMember(ctx, b.Org.ID, owner)
	require.ErrorIs(t, err, store.ErrNotFound)

	// Ed is now the last owner.
	_, err = s.SetMemberRole(ctx, b.Org.ID, ed.UserID, auth.Editor)
	require.ErrorIs(t, err, store.ErrConflict)
	require.ErrorIs(t, s.RemoveMember(ctx, b.Org.ID, ed.UserID), store.ErrConflict)

	// A second owner removed directly (not demoted first) is also allowed.
	other, err := s.AddMember(ctx, b.Org.ID, "olga@example.com", "Olga", auth.Owner)
	require.NoError(t, err)
	require.NoError(t, s.RemoveMember(ctx, b.Org.ID, other.UserID))
}

func TestMemberNotFound(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	a := bootstrap(t, s, "Acme")
	b := bootstrap(t, s, "Other")

	tests := map[string]struct {
		org, user uuid.UUID
	}{
		"unknown user":               {a.Org.ID, uuid.New()},
		"member of another org":      {a.Org.ID, b.User.ID},
		"unknown org":                {uuid.New(), a.User.ID},
		"own member, other org's id": {b.Org.ID, a.User.ID},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := s.GetMember(ctx, tc.org, tc.user)
			require.ErrorIs(t, err, store.ErrNotFound)
			_, err = s.SetMemberRole(ctx, tc.org, tc.user, auth.Viewer)
			require.ErrorIs(t, err, store.ErrNotFound)
			require.ErrorIs(t, s.RemoveMember(ctx, tc.org, tc.user), store.ErrNotFound)
		})
	}
}

func TestRemoveMemberRevokesTheirKeys(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")
	ed, err := s.AddMember(ctx, b.Org.ID, "ed@example.com", "Ed", auth.Editor)
	require.NoError(t, err)
	key, _, err := s.CreateKey(ctx, b.Org.ID, ed.UserID, "laptop", nil)
	require.NoError(t, err)

	// Ed's key in another organization must survive.
	other := bootstrap(t, s, "Other")
	_, err = s.AddMember(ctx, other.Org.ID, "ed@example.com", "", auth.Viewer)
	require.NoError(t, err)
	otherKey, _, err := s.CreateKey(ctx, other.Org.ID, ed.UserID, "laptop", nil)
	require.NoError(t, err)

	p, err := s.Authenticate(ctx, key)
	require.NoError(t, err)
	require.Equal(t, auth.Editor, p.Role)

	require.NoError(t, s.RemoveMember(ctx, b.Org.ID, ed.UserID))

	_, err = s.Authenticate(ctx, key)
	require.ErrorIs(t, err, store.ErrNotFound)
	assert.Equal(t, 0, count(t, db, `SELECT count(*) FROM api_keys WHERE org_id = $1 AND user_id = $2`, b.Org.ID, ed.UserID))
	p, err = s.Authenticate(ctx, otherKey)
	require.NoError(t, err)
	assert.Equal(t, other.Org.ID, p.OrgID)
	_, err = s.Authenticate(ctx, b.Key)
	require.NoError(t, err, "the owner's key is untouched")
}

func TestSetMemberRoleChangesAuthenticatedRole(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")
	ed, err := s.AddMember(ctx, b.Org.ID, "ed@example.com", "Ed", auth.Viewer)
	require.NoError(t, err)
	key, _, err := s.CreateKey(ctx, b.Org.ID, ed.UserID, "", nil)
	require.NoError(t, err)

	_, err = s.SetMemberRole(ctx, b.Org.ID, ed.UserID, auth.Admin)
	require.NoError(t, err)
	p, err := s.Authenticate(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, auth.Admin, p.Role, "a key acts with the member's current role")
}

// TestLastOwnerConcurrent races two owners leaving (or being demoted) at
// once: the membership lock must let exactly one through.
func TestLastOwnerConcurrent(t *testing.T) {
	t.Parallel()
	tests := map[string]func(ctx context.Context, s *store.Store, org, user uuid.UUID) error{
		"remove both": func(ctx context.Context, s *store.Store, org, user uuid.UUID) error {
			return s.RemoveMember(ctx, org, user)
		},
		"demote both": func(ctx context.Context, s *store.Store, org, user uuid.UUID) error {
			_, err := s.SetMemberRole(ctx, org, user, auth.Admin)
			return err
		},
	}
	for name, change := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, _ := newStore(t)
			b := bootstrap(t, s, "Acme")
			second, err := s.AddMember(t.Context(), b.Org.ID, "second@example.com", "", auth.Owner)
			require.NoError(t, err)

			users := []uuid.UUID{b.User.ID, second.UserID}
			errs := make([]error, len(users))
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i, u := range users {
				wg.Go(func() {
					<-start
					errs[i] = change(t.Context(), s, b.Org.ID, u)
				})
			}
			close(start)
			wg.Wait()

			ok := 0
			for _, err := range errs {
				if err == nil {
					ok++
				} else {
					require.ErrorIs(t, err, store.ErrConflict)
				}
			}
			assert.Equal(t, 1, ok, "exactly one change goes through: %v", errs)
			members, err := s.ListMembers(t.Context(), b.Org.ID)
			require.NoError(t, err)
			owners := 0
			for _, m := range members {
				if m.Role == auth.Owner {
					owners++
				}
			}
			assert.Equal(t, 1, owners)
		})
	}
}
