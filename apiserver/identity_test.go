package apiserver

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/store"
)

// memberID finds the user id of org A's member with email.
func (f *fixture) memberID(t *testing.T, email string) uuid.UUID {
	t.Helper()
	ms, err := f.store.ListMembers(t.Context(), f.orgA.ID)
	require.NoError(t, err)
	for _, m := range ms {
		if m.Email == email {
			return m.UserID
		}
	}
	t.Fatalf("org A has no member %s", email)
	return uuid.Nil
}

// addMember adds a member to the key's organization through the API.
func (f *fixture) addMember(t *testing.T, key, email, name string, role auth.Role) apiv1.Member {
	t.Helper()
	var m apiv1.Member
	f.mustDo(t, http.StatusCreated, "POST", "/v1/members", key, map[string]any{"email": email, "name": name, "role": role}, &m)
	return m
}

// TestMemberIdentityIsPerOrganization: the name an organization gives a
// member is its own. Org B adding (or renaming, or removing) the person org A
// calls "Alice" changes nothing A sees, and B never learns A's name.
func TestMemberIdentityIsPerOrganization(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, b := f.keys[auth.Owner], f.keyB

	alice := f.addMember(t, a, "x@example.com", "Alice", auth.Editor)
	mallory := f.addMember(t, b, "x@example.com", "Mallory", auth.Viewer)
	assert.Equal(t, "Mallory", mallory.Name)
	f.addMember(t, a, "y@example.com", "Alice Y", auth.Viewer)
	blank := f.do(t, "POST", "/v1/members", b, map[string]any{"email": "Y@example.com", "role": "viewer"})
	require.Equal(t, http.StatusCreated, blank.Status, "%s", blank.Body)
	var bm apiv1.Member
	blank.json(t, &bm)
	assert.Empty(t, bm.Name)
	assert.Equal(t, "Y@example.com", bm.Email, "B sees the address as B typed it")
	assert.NotContains(t, string(blank.Body), "Alice")

	nameIn := func(key string, id uuid.UUID) string {
		t.Helper()
		var ms apiv1.Page[apiv1.Member]
		f.mustDo(t, http.StatusOK, "GET", "/v1/members", key, nil, &ms)
		for _, m := range ms.Items {
			if m.UserID == id.String() {
				return m.Name
			}
		}
		t.Fatalf("member %s not listed", id)
		return ""
	}
	assert.Equal(t, "Alice", nameIn(a, uuid.MustParse(alice.UserID)), "B renamed A's member")
	assert.Equal(t, "Mallory", nameIn(b, uuid.MustParse(alice.UserID)))
	assert.NotContains(t, string(f.do(t, "GET", "/v1/members", b, nil).Body), "Alice")

	// Renames stay in their organization too.
	var renamed apiv1.Member
	f.mustDo(t, http.StatusOK, "PATCH", "/v1/members/"+alice.UserID, b, map[string]any{"name": "  Mallory M  "}, &renamed)
	assert.Equal(t, "Mallory M", renamed.Name)
	assert.Equal(t, string(auth.Viewer), renamed.Role, "a rename leaves the role")
	f.mustDo(t, http.StatusOK, "PATCH", "/v1/members/"+alice.UserID, a, map[string]any{"name": "Alice Smith"}, nil)
	assert.Equal(t, "Alice Smith", nameIn(a, uuid.MustParse(alice.UserID)))
	assert.Equal(t, "Mallory M", nameIn(b, uuid.MustParse(alice.UserID)))
	r := f.do(t, "PATCH", "/v1/members/"+alice.UserID, a, map[string]any{})
	assert.Equal(t, http.StatusUnprocessableEntity, r.Status, "a patch changing nothing")
	r = f.do(t, "PATCH", "/v1/members/"+alice.UserID, a, map[string]any{"name": strings.Repeat("n", 201)})
	assert.Equal(t, []string{"name"}, r.fields(t))

	// The person has one user id everywhere; through B it reaches only B's
	// membership.
	f.mustDo(t, http.StatusNoContent, "DELETE", "/v1/members/"+alice.UserID, b, nil, nil)
	got, err := f.store.GetMember(t.Context(), f.orgA.ID, uuid.MustParse(alice.UserID))
	require.NoError(t, err)
	assert.Equal(t, store.Member{UserID: uuid.MustParse(alice.UserID), Email: "x@example.com", Name: "Alice Smith", Role: auth.Editor, CreatedAt: got.CreatedAt}, got)
}

// TestIssueMemberKey: an admin issues a key for a member, shown once; it
// authenticates as that member with at most the role it was issued with,
// which is never above the member's or the issuer's. Viewers and editors
// cannot issue keys for others, nor can an admin for a member above them.
func TestIssueMemberKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	admin, owner := f.keys[auth.Admin], f.keys[auth.Owner]
	ed := f.addMember(t, owner, "ed@example.com", "Ed", auth.Editor)
	path := "/v1/members/" + ed.UserID + "/api-keys"

	var k apiv1.APIKeyCreated
	f.mustDo(t, http.StatusCreated, "POST", path, admin, map[string]any{"name": "ed's laptop"}, &k)
	assert.Equal(t, ed.UserID, k.UserID)
	require.NotNil(t, k.Role)
	assert.Equal(t, string(auth.Editor), *k.Role, "the member's role by default")
	require.NotNil(t, k.CreatedBy)
	assert.Equal(t, f.memberID(t, "admin@a.example").String(), *k.CreatedBy)

	// The key acts as Ed, an editor.
	f.mustDo(t, http.StatusCreated, "POST", "/v1/jobs", k.Key, urlJob(), nil)
	assert.Equal(t, http.StatusForbidden, f.do(t, "PATCH", "/v1/organization", k.Key, map[string]any{"name": "x"}).Status)
	var own apiv1.Page[apiv1.APIKey]
	f.mustDo(t, http.StatusOK, "GET", "/v1/api-keys", k.Key, nil, &own)
	require.Len(t, own.Items, 1, "the key is Ed's")
	assert.Equal(t, k.ID, own.Items[0].ID)

	// Shown once: listings carry the prefix, never the key.
	for _, key := range []string{admin, k.Key} {
		lp := path
		if key == k.Key {
			lp = "/v1/api-keys"
		}
		r := f.do(t, "GET", lp, key, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		assert.Contains(t, string(r.Body), k.Prefix)
		assert.NotContains(t, string(r.Body), k.Key)
	}

	// A lower role caps the key.
	var viewerKey apiv1.APIKeyCreated
	f.mustDo(t, http.StatusCreated, "POST", path, admin, map[string]any{"name": "read only", "role": "viewer"}, &viewerKey)
	f.mustDo(t, http.StatusOK, "GET", "/v1/jobs", viewerKey.Key, nil, nil)
	assert.Equal(t, http.StatusForbidden, f.do(t, "POST", "/v1/jobs", viewerKey.Key, urlJob()).Status)

	refusals := map[string]struct {
		key, path string
		body      map[string]any
		status    int
		fields    []string
	}{
		"above the member's role":   {admin, path, map[string]any{"name": "k", "role": "admin"}, http.StatusUnprocessableEntity, []string{"role"}},
		"above the issuer's role":   {admin, path, map[string]any{"name": "k", "role": "owner"}, http.StatusUnprocessableEntity, []string{"role", "role"}},
		"unknown role":              {admin, path, map[string]any{"name": "k", "role": "root"}, http.StatusUnprocessableEntity, []string{"role"}},
		"no name":                   {admin, path, map[string]any{"role": "viewer"}, http.StatusUnprocessableEntity, []string{"name"}},
		"member above the issuer":   {admin, "/v1/members/" + f.memberID(t, "owner@a.example").String() + "/api-keys", map[string]any{"name": "k"}, http.StatusForbidden, nil},
		"viewer issuing":            {f.keys[auth.Viewer], path, map[string]any{"name": "k"}, http.StatusForbidden, nil},
		"editor issuing":            {f.keys[auth.Editor], path, map[string]any{"name": "k"}, http.StatusForbidden, nil},
		"editor issuing for itself": {f.keys[auth.Editor], "/v1/members/" + f.memberID(t, "editor@a.example").String() + "/api-keys", map[string]any{"name": "k"}, http.StatusForbidden, nil},
		"unknown member":            {admin, "/v1/members/" + uuid.NewString() + "/api-keys", map[string]any{"name": "k"}, http.StatusNotFound, nil},
	}
	for name, tc := range refusals {
		t.Run(name, func(t *testing.T) {
			r := f.do(t, "POST", tc.path, tc.key, tc.body)
			require.Equal(t, tc.status, r.Status, "%s", r.Body)
			if tc.fields != nil {
				assert.Equal(t, tc.fields, r.fields(t))
			}
		})
	}
	var keys apiv1.Page[apiv1.APIKey]
	f.mustDo(t, http.StatusOK, "GET", path, owner, nil, &keys)
	assert.Len(t, keys.Items, 2, "refused requests issued nothing")

	// A capped key cannot shed its cap: the key it makes for its member
	// carries the same cap, and it revokes only keys capped at or below it.
	var derived apiv1.APIKeyCreated
	f.mustDo(t, http.StatusCreated, "POST", "/v1/api-keys", viewerKey.Key, map[string]any{"name": "made by a viewer key"}, &derived)
	require.NotNil(t, derived.Role)
	assert.Equal(t, string(auth.Viewer), *derived.Role)
	assert.Nil(t, derived.CreatedBy, "Ed made it")
	assert.Equal(t, http.StatusForbidden, f.do(t, "POST", "/v1/jobs", derived.Key, urlJob()).Status)
	var fromEditorKey apiv1.APIKeyCreated
	f.mustDo(t, http.StatusCreated, "POST", "/v1/api-keys", k.Key, map[string]any{"name": "made by an editor key"}, &fromEditorKey)
	require.NotNil(t, fromEditorKey.Role)
	assert.Equal(t, string(auth.Editor), *fromEditorKey.Role)
	_, uncapped, err := f.store.CreateKey(t.Context(), f.orgA.ID, uuid.MustParse(ed.UserID), "Ed's own", nil)
	require.NoError(t, err)
	for _, id := range []string{uncapped.ID.String(), k.ID, fromEditorKey.ID} {
		r := f.do(t, "DELETE", "/v1/api-keys/"+id, viewerKey.Key, nil)
		require.Equal(t, http.StatusForbidden, r.Status, "%s", r.Body)
		assert.Equal(t, problemPrefix+"forbidden", r.problem(t).Type)
	}
	f.mustDo(t, http.StatusCreated, "POST", "/v1/jobs", k.Key, urlJob(), nil) // still valid
	f.mustDo(t, http.StatusOK, "DELETE", "/v1/api-keys/"+fromEditorKey.ID, k.Key, nil, nil)
	f.mustDo(t, http.StatusOK, "DELETE", "/v1/api-keys/"+derived.ID, viewerKey.Key, nil, nil)
	assert.Equal(t, http.StatusUnauthorized, f.do(t, "GET", "/v1/jobs", derived.Key, nil).Status)
	assert.Equal(t, http.StatusNotFound, f.do(t, "DELETE", "/v1/api-keys/"+uuid.NewString(), viewerKey.Key, nil).Status,
		"an unknown key is 404, as for a key of its own")

	// The admin revokes it; nobody else's key id works through Ed.
	f.mustDo(t, http.StatusOK, "DELETE", path+"/"+k.ID, admin, nil, nil)
	assert.Equal(t, http.StatusUnauthorized, f.do(t, "GET", "/v1/jobs", k.Key, nil).Status)
	ownerKeys, err := f.store.ListKeys(t.Context(), f.orgA.ID, f.memberID(t, "owner@a.example"))
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, f.do(t, "DELETE", path+"/"+ownerKeys[0].ID.String(), admin, nil).Status)
	f.mustDo(t, http.StatusOK, "GET", "/v1/jobs", f.keys[auth.Owner], nil, nil)
}

// TestInvitations: an admin invites a member; the token is shown once, and
// one unauthenticated call exchanges it for a key acting as the member. A
// second use, an expired (by the server's clock) or revoked token, or one
// whose creator may no longer invite answers 410 with its reason; a token
// that matches nothing answers the same 404 however close it is.
func TestInvitations(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	admin := f.keys[auth.Admin]
	vic := f.addMember(t, f.keys[auth.Owner], "vic@example.com", "Vic", auth.Editor)
	path := "/v1/members/" + vic.UserID + "/invitations"
	redeem := func(token string) response {
		t.Helper()
		return f.do(t, "POST", "/v1/invitations/redeem", "", map[string]any{"token": token, "name": "vic's laptop"})
	}
	gone := func(r response, slug string) {
		t.Helper()
		require.Equal(t, http.StatusGone, r.Status, "%s", r.Body)
		assert.Equal(t, problemPrefix+slug, r.problem(t).Type)
	}

	var inv apiv1.InvitationCreated
	f.mustDo(t, http.StatusCreated, "POST", path, admin, map[string]any{"role": "viewer"}, &inv)
	assert.Equal(t, store.InvitationPending, inv.Status)
	assert.Equal(t, string(auth.Viewer), inv.Role)
	assert.True(t, inv.ExpiresAt.Equal(f.clock.Now().Add(72*time.Hour)), "72 hours by the server's clock: %s", inv.ExpiresAt)
	listed := f.do(t, "GET", path, admin, nil)
	require.Equal(t, http.StatusOK, listed.Status)
	assert.NotContains(t, string(listed.Body), inv.Token, "a listed invitation never shows its token")

	var k apiv1.APIKeyCreated
	r := redeem(inv.Token)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	r.json(t, &k)
	assert.Equal(t, vic.UserID, k.UserID)
	assert.Equal(t, "vic's laptop", k.Name)
	var org apiv1.Organization
	f.mustDo(t, http.StatusOK, "GET", "/v1/organization", k.Key, nil, &org)
	assert.Equal(t, f.orgA.ID.String(), org.ID)
	assert.Equal(t, http.StatusForbidden, f.do(t, "POST", "/v1/jobs", k.Key, urlJob()).Status, "the invitation's viewer role caps the editor's key")
	gone(redeem(inv.Token), "invitation-redeemed")
	var invs apiv1.Page[apiv1.Invitation]
	f.mustDo(t, http.StatusOK, "GET", path, admin, nil, &invs)
	require.Len(t, invs.Items, 1)
	assert.Equal(t, store.InvitationRedeemed, invs.Items[0].Status)
	require.NotNil(t, invs.Items[0].KeyID)
	assert.Equal(t, k.ID, *invs.Items[0].KeyID)
	assert.Equal(t, http.StatusConflict, f.do(t, "DELETE", path+"/"+inv.ID, admin, nil).Status)

	t.Run("expired", func(t *testing.T) {
		var inv apiv1.InvitationCreated
		f.mustDo(t, http.StatusCreated, "POST", path, admin, map[string]any{"expires_in_seconds": 600}, &inv)
		assert.Equal(t, string(auth.Editor), inv.Role, "the member's role by default")
		f.clock.SetTime(f.clock.Now().Add(10 * time.Minute))
		gone(redeem(inv.Token), "invitation-expired")
		var invs apiv1.Page[apiv1.Invitation]
		f.mustDo(t, http.StatusOK, "GET", path, admin, nil, &invs)
		assert.Equal(t, store.InvitationExpired, invs.Items[0].Status)
	})
	t.Run("revoked", func(t *testing.T) {
		var inv apiv1.InvitationCreated
		f.mustDo(t, http.StatusCreated, "POST", path, admin, map[string]any{}, &inv)
		var out apiv1.Invitation
		f.mustDo(t, http.StatusOK, "DELETE", path+"/"+inv.ID, admin, nil, &out)
		assert.Equal(t, store.InvitationRevoked, out.Status)
		gone(redeem(inv.Token), "invitation-revoked")
	})
	t.Run("creator no longer an admin", func(t *testing.T) {
		boss := f.addMember(t, f.keys[auth.Owner], "boss@example.com", "", auth.Admin)
		bossKey, _, err := f.store.CreateKey(t.Context(), f.orgA.ID, uuid.MustParse(boss.UserID), "k", nil)
		require.NoError(t, err)
		var inv apiv1.InvitationCreated
		f.mustDo(t, http.StatusCreated, "POST", path, bossKey, map[string]any{}, &inv)
		f.mustDo(t, http.StatusOK, "PATCH", "/v1/members/"+boss.UserID, f.keys[auth.Owner], map[string]any{"role": "editor"}, nil)
		gone(redeem(inv.Token), "invitation-revoked")
	})
	t.Run("matches nothing", func(t *testing.T) {
		var inv apiv1.InvitationCreated
		f.mustDo(t, http.StatusCreated, "POST", path, admin, map[string]any{}, &inv)
		unknown, _, _ := auth.NewInvitationToken()
		var bodies []string
		for _, token := range []string{tamper(inv.Token), unknown} {
			r := redeem(token)
			require.Equal(t, http.StatusNotFound, r.Status, "%s", r.Body)
			assert.Equal(t, problemPrefix+"invitation-not-found", r.problem(t).Type)
			// Each request has its own id; everything else must be alike.
			bodies = append(bodies, strings.ReplaceAll(string(r.Body), r.Header.Get(requestIDHeader), "<request id>"))
		}
		assert.Equal(t, bodies[0], bodies[1], "a near miss and a stranger get the same answer")
		for _, token := range []string{"", "hunter2", f.keys[auth.Viewer]} {
			r := redeem(token)
			require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r.Body)
			assert.Equal(t, []string{"token"}, r.fields(t))
		}
		require.Equal(t, http.StatusCreated, redeem(inv.Token).Status, "failed attempts do not use the invitation up")
	})
	t.Run("refused", func(t *testing.T) {
		for name, tc := range map[string]struct {
			key    string
			body   map[string]any
			status int
		}{
			"by a viewer":            {f.keys[auth.Viewer], map[string]any{}, http.StatusForbidden},
			"by an editor":           {f.keys[auth.Editor], map[string]any{}, http.StatusForbidden},
			"above the member's":     {admin, map[string]any{"role": "admin"}, http.StatusUnprocessableEntity},
			"too short":              {admin, map[string]any{"expires_in_seconds": 60}, http.StatusUnprocessableEntity},
			"too long":               {admin, map[string]any{"expires_in_seconds": 30 * 24 * 3600}, http.StatusUnprocessableEntity},
			"by another org's owner": {f.keyB, map[string]any{}, http.StatusNotFound},
		} {
			r := f.do(t, "POST", path, tc.key, tc.body)
			assert.Equal(t, tc.status, r.Status, "%s: %s", name, r.Body)
		}
	})
}
