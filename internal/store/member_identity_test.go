package store_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/store"
)

// TestMemberNameBelongsToTheOrganization: the name (and the spelling of the
// address) an organization gives a member is its own. Another organization
// adding the same person neither renames them for the first nor learns the
// first one's name.
func TestMemberNameBelongsToTheOrganization(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	a := bootstrap(t, s, "Acme")
	b := bootstrap(t, s, "Bravo")
	c := bootstrap(t, s, "Charlie")

	alice, err := s.AddMember(ctx, a.Org.ID, "x@example.com", "Alice", auth.Editor)
	require.NoError(t, err)
	mallory, err := s.AddMember(ctx, b.Org.ID, "X@Example.com", "Mallory", auth.Viewer)
	require.NoError(t, err)
	assert.Equal(t, "Mallory", mallory.Name)
	assert.Equal(t, "X@Example.com", mallory.Email, "B sees the address as B typed it")
	blank, err := s.AddMember(ctx, c.Org.ID, "x@EXAMPLE.com", "", auth.Viewer)
	require.NoError(t, err)
	assert.Empty(t, blank.Name, "an empty name never shows the name another organization gave")
	assert.Equal(t, "x@EXAMPLE.com", blank.Email)

	got, err := s.GetMember(ctx, a.Org.ID, alice.UserID)
	require.NoError(t, err)
	assert.Equal(t, "Alice", got.Name, "B renamed A's member")
	assert.Equal(t, "x@example.com", got.Email)
	for org, want := range map[string]struct {
		id   uuid.UUID
		name string
	}{
		"A": {a.Org.ID, "Alice"},
		"B": {b.Org.ID, "Mallory"},
		"C": {c.Org.ID, ""},
	} {
		members, err := s.ListMembers(ctx, want.id)
		require.NoError(t, err)
		for _, m := range members {
			if m.UserID == alice.UserID {
				assert.Equal(t, want.name, m.Name, "org %s lists the name it gave", org)
			}
		}
	}
}

// TestIssueKeyActsAtMostWithItsRole: a key an admin issues for a member acts
// with the lower of its role and the member's current role, and records who
// issued it; a member's own key follows the member's role.
func TestIssueKeyActsAtMostWithItsRole(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	a := bootstrap(t, s, "Acme")
	ed, err := s.AddMember(ctx, a.Org.ID, "ed@example.com", "Ed", auth.Editor)
	require.NoError(t, err)

	viewerKey, rec, err := s.IssueKey(ctx, a.Org.ID, ed.UserID, a.User.ID, "read only", auth.Viewer)
	require.NoError(t, err)
	require.NotNil(t, rec.Role)
	assert.Equal(t, auth.Viewer, *rec.Role)
	require.NotNil(t, rec.CreatedBy)
	assert.Equal(t, a.User.ID, *rec.CreatedBy)
	editorKey, _, err := s.IssueKey(ctx, a.Org.ID, ed.UserID, a.User.ID, "full", auth.Editor)
	require.NoError(t, err)
	ownKey, own, err := s.CreateKey(ctx, a.Org.ID, ed.UserID, "own", nil)
	require.NoError(t, err)
	assert.Nil(t, own.Role)
	assert.Nil(t, own.CreatedBy)

	roleOf := func(key string) auth.Role {
		t.Helper()
		p, err := s.Authenticate(ctx, key)
		require.NoError(t, err)
		require.Equal(t, ed.UserID, p.UserID)
		return p.Role
	}
	assert.Equal(t, auth.Viewer, roleOf(viewerKey))
	assert.Equal(t, auth.Editor, roleOf(editorKey))
	assert.Equal(t, auth.Editor, roleOf(ownKey))

	_, err = s.SetMemberRole(ctx, a.Org.ID, ed.UserID, auth.Admin)
	require.NoError(t, err)
	assert.Equal(t, auth.Viewer, roleOf(viewerKey), "a promotion does not raise an issued key")
	assert.Equal(t, auth.Editor, roleOf(editorKey), "a promotion does not raise an issued key")
	assert.Equal(t, auth.Admin, roleOf(ownKey))

	_, err = s.SetMemberRole(ctx, a.Org.ID, ed.UserID, auth.Viewer)
	require.NoError(t, err)
	assert.Equal(t, auth.Viewer, roleOf(editorKey), "a demotion lowers every key")

	keys, err := s.ListKeys(ctx, a.Org.ID, ed.UserID)
	require.NoError(t, err)
	assert.Len(t, keys, 3)

	// Issuing for someone who is not a member of the organization fails.
	other := bootstrap(t, s, "Other")
	_, _, err = s.IssueKey(ctx, a.Org.ID, other.User.ID, a.User.ID, "x", auth.Viewer)
	require.ErrorIs(t, err, store.ErrConflict)
}

// invitationClock is the time invitations in these tests are made at.
var invitationClock = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func invite(t *testing.T, s *store.Store, org, user, by uuid.UUID, role auth.Role) (string, store.Invitation) {
	t.Helper()
	token, inv, err := s.CreateInvitation(t.Context(), store.NewInvitation{
		OrgID: org, UserID: user, CreatedBy: by, Role: role,
		CreatedAt: invitationClock, ExpiresAt: invitationClock.Add(time.Hour),
	})
	require.NoError(t, err)
	return token, inv
}

// TestRedeemInvitation: a token is exchanged once for a key of the invited
// member, acting at most with the invitation's role; afterwards, or when it
// expired, was revoked or its creator lost the right to make it, it is
// refused with its reason, and a token that matches nothing is not found.
func TestRedeemInvitation(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	a := bootstrap(t, s, "Acme")
	ed, err := s.AddMember(ctx, a.Org.ID, "ed@example.com", "Ed", auth.Admin)
	require.NoError(t, err)
	during := invitationClock.Add(time.Minute)

	token, inv := invite(t, s, a.Org.ID, ed.UserID, a.User.ID, auth.Editor)
	assert.Equal(t, store.InvitationPending, inv.Status(during))
	assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM member_invitations WHERE hash = $1`, auth.HashKey(token)),
		"the token is stored as its SHA-256")
	assert.Equal(t, 0, count(t, db, `SELECT count(*) FROM member_invitations WHERE position($1 in encode(hash, 'escape') || prefix) > 0`, token),
		"the token itself is never stored")

	prefix, err := auth.InvitationPrefix(token)
	require.NoError(t, err)
	for name, bad := range map[string]string{
		"wrong secret": prefix + "_" + strings.Repeat("a", 32),
		"unknown":      func() string { t, _, _ := auth.NewInvitationToken(); return t }(),
		"an api key":   a.Key,
		"garbage":      "hunter2",
	} {
		_, _, err := s.RedeemInvitation(ctx, bad, "k", during)
		require.ErrorIs(t, err, store.ErrNotFound, name)
	}

	key, rec, err := s.RedeemInvitation(ctx, token, "laptop", during)
	require.NoError(t, err)
	assert.Equal(t, "laptop", rec.Name)
	p, err := s.Authenticate(ctx, key)
	require.NoError(t, err)
	capRole := auth.Editor
	assert.Equal(t, store.Principal{KeyID: rec.ID, OrgID: a.Org.ID, UserID: ed.UserID, Role: auth.Editor, KeyRole: &capRole, OrgStatus: "active", ShareWeight: 1}, p,
		"the key is the member's, capped at the invitation's role")
	require.NotNil(t, rec.CreatedBy)
	assert.Equal(t, a.User.ID, *rec.CreatedBy)

	_, _, err = s.RedeemInvitation(ctx, token, "again", during)
	require.ErrorIs(t, err, store.ErrInvitationRedeemed)
	invs, err := s.ListInvitations(ctx, a.Org.ID, ed.UserID)
	require.NoError(t, err)
	require.Len(t, invs, 1)
	assert.Equal(t, store.InvitationRedeemed, invs[0].Status(during))
	require.NotNil(t, invs[0].KeyID)
	assert.Equal(t, rec.ID, *invs[0].KeyID)
	_, err = s.RevokeInvitation(ctx, a.Org.ID, ed.UserID, inv.ID, during)
	require.ErrorIs(t, err, store.ErrConflict, "a redeemed invitation is not revoked; its key is")

	t.Run("expired", func(t *testing.T) {
		token, _ := invite(t, s, a.Org.ID, ed.UserID, a.User.ID, auth.Viewer)
		_, _, err := s.RedeemInvitation(ctx, token, "k", invitationClock.Add(time.Hour))
		require.ErrorIs(t, err, store.ErrInvitationExpired)
		_, _, err = s.RedeemInvitation(ctx, token, "k", invitationClock.Add(time.Hour-time.Second))
		require.NoError(t, err, "a refused redemption does not use the invitation up")
	})
	t.Run("revoked", func(t *testing.T) {
		token, inv := invite(t, s, a.Org.ID, ed.UserID, a.User.ID, auth.Viewer)
		got, err := s.RevokeInvitation(ctx, a.Org.ID, ed.UserID, inv.ID, during)
		require.NoError(t, err)
		require.NotNil(t, got.RevokedAt)
		again, err := s.RevokeInvitation(ctx, a.Org.ID, ed.UserID, inv.ID, during.Add(time.Minute))
		require.NoError(t, err, "revoking twice is a no-op")
		assert.True(t, got.RevokedAt.Equal(*again.RevokedAt))
		_, _, err = s.RedeemInvitation(ctx, token, "k", during)
		require.ErrorIs(t, err, store.ErrInvitationRevoked)
	})
	t.Run("other organization", func(t *testing.T) {
		other := bootstrap(t, s, "Other")
		_, inv := invite(t, s, a.Org.ID, ed.UserID, a.User.ID, auth.Viewer)
		_, err := s.RevokeInvitation(ctx, other.Org.ID, ed.UserID, inv.ID, during)
		require.ErrorIs(t, err, store.ErrNotFound)
		_, err = s.RevokeInvitation(ctx, other.Org.ID, other.User.ID, inv.ID, during)
		require.ErrorIs(t, err, store.ErrNotFound)
		invs, err := s.ListInvitations(ctx, other.Org.ID, ed.UserID)
		require.NoError(t, err)
		assert.Empty(t, invs)
	})
	t.Run("creator demoted", func(t *testing.T) {
		token, _ := invite(t, s, a.Org.ID, a.User.ID, ed.UserID, auth.Admin)
		_, err := s.SetMemberRole(ctx, a.Org.ID, ed.UserID, auth.Editor)
		require.NoError(t, err)
		t.Cleanup(func() { _, _ = s.SetMemberRole(context.Background(), a.Org.ID, ed.UserID, auth.Admin) })
		_, _, err = s.RedeemInvitation(ctx, token, "k", during)
		require.ErrorIs(t, err, store.ErrInvitationRevoked, "an editor may not manage members")
	})
	t.Run("member removed", func(t *testing.T) {
		gone, err := s.AddMember(ctx, a.Org.ID, "gone@example.com", "", auth.Viewer)
		require.NoError(t, err)
		token, _ := invite(t, s, a.Org.ID, gone.UserID, a.User.ID, auth.Viewer)
		require.NoError(t, s.RemoveMember(ctx, a.Org.ID, gone.UserID))
		_, _, err = s.RedeemInvitation(ctx, token, "k", during)
		require.ErrorIs(t, err, store.ErrNotFound)
	})
	t.Run("organization suspended", func(t *testing.T) {
		token, _ := invite(t, s, a.Org.ID, ed.UserID, a.User.ID, auth.Viewer)
		_, err := s.SetOrgStatus(ctx, a.Org.ID, "suspended")
		require.NoError(t, err)
		_, _, err = s.RedeemInvitation(ctx, token, "k", during)
		require.ErrorIs(t, err, store.ErrOrgSuspended)
		_, err = s.SetOrgStatus(ctx, a.Org.ID, "active")
		require.NoError(t, err)
		_, _, err = s.RedeemInvitation(ctx, token, "k", during)
		require.NoError(t, err)
	})
}

// TestRedeemInvitationConcurrent: many redemptions of one token at once
// make exactly one key.
func TestRedeemInvitationConcurrent(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	a := bootstrap(t, s, "Acme")
	ed, err := s.AddMember(t.Context(), a.Org.ID, "ed@example.com", "Ed", auth.Viewer)
	require.NoError(t, err)
	token, _ := invite(t, s, a.Org.ID, ed.UserID, a.User.ID, auth.Viewer)

	const n = 8
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			_, _, errs[i] = s.RedeemInvitation(t.Context(), token, "k", invitationClock.Add(time.Minute))
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			require.ErrorIs(t, err, store.ErrInvitationRedeemed)
		}
	}
	assert.Equal(t, 1, ok)
	assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM api_keys WHERE user_id = $1`, ed.UserID))
}
