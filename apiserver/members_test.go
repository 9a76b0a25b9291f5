package apiserver

import (
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
)

func TestMembersAndKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	admin, owner := f.keys[auth.Admin], f.keys[auth.Owner]

	// An admin adds people up to its own role, never above.
	var m apiv1.Member
	f.mustDo(t, http.StatusCreated, "POST", "/v1/members", admin, map[string]any{"email": "new@a.example", "role": "editor"}, &m)
	assert.Equal(t, string(auth.Editor), m.Role)
	r := f.do(t, "POST", "/v1/members", admin, map[string]any{"email": "boss@a.example", "role": "owner"})
	assert.Equal(t, http.StatusUnprocessableEntity, r.Status)
	assert.Contains(t, r.fields(t), "role")
	r = f.do(t, "POST", "/v1/members", admin, map[string]any{"email": "new@a.example", "role": "viewer"})
	assert.Equal(t, http.StatusConflict, r.Status, "adding a member twice")

	// An admin cannot touch the owner.
	members, err := f.store.ListMembers(t.Context(), f.orgA.ID)
	require.NoError(t, err)
	var ownerID string
	for _, x := range members {
		if x.Role == auth.Owner {
			ownerID = x.UserID.String()
		}
	}
	r = f.do(t, "PATCH", "/v1/members/"+ownerID, admin, map[string]any{"role": "viewer"})
	assert.Equal(t, http.StatusForbidden, r.Status)
	r = f.do(t, "DELETE", "/v1/members/"+ownerID, admin, nil)
	assert.Equal(t, http.StatusForbidden, r.Status)

	// The last owner can neither leave nor be demoted.
	r = f.do(t, "PATCH", "/v1/members/"+ownerID, owner, map[string]any{"role": "admin"})
	assert.Equal(t, http.StatusConflict, r.Status, "%s", r.Body)
	r = f.do(t, "DELETE", "/v1/members/"+ownerID, owner, nil)
	assert.Equal(t, http.StatusConflict, r.Status)

	// Role changes take effect on the member's next request.
	editorKey, _, err := f.store.CreateKey(t.Context(), f.orgA.ID, uuid.MustParse(m.UserID), "k", nil)
	require.NoError(t, err)
	f.mustDo(t, http.StatusCreated, "POST", "/v1/jobs", editorKey, urlJob(), nil)
	f.mustDo(t, http.StatusOK, "PATCH", "/v1/members/"+m.UserID, admin, map[string]any{"role": "viewer"}, nil)
	r = f.do(t, "POST", "/v1/jobs", editorKey, urlJob())
	assert.Equal(t, http.StatusForbidden, r.Status)

	// Removing a member revokes their keys.
	f.mustDo(t, http.StatusNoContent, "DELETE", "/v1/members/"+m.UserID, admin, nil, nil)
	r = f.do(t, "GET", "/v1/jobs", editorKey, nil)
	assert.Equal(t, http.StatusUnauthorized, r.Status)

	// Keys: created once, listed by prefix only, revocable.
	var k apiv1.APIKeyCreated
	f.mustDo(t, http.StatusCreated, "POST", "/v1/api-keys", f.keys[auth.Viewer], map[string]any{"name": "ci"}, &k)
	assert.Contains(t, k.Key, k.Prefix)
	var keys apiv1.Page[apiv1.APIKey]
	list := f.do(t, "GET", "/v1/api-keys", f.keys[auth.Viewer], nil)
	list.json(t, &keys)
	assert.NotContains(t, string(list.Body), k.Key, "a listed key never shows its secret")
	assert.Len(t, keys.Items, 2)
	f.mustDo(t, http.StatusOK, "GET", "/v1/organization", k.Key, nil, nil)
	f.mustDo(t, http.StatusOK, "DELETE", "/v1/api-keys/"+k.ID, f.keys[auth.Viewer], nil, nil)
	assert.Equal(t, http.StatusUnauthorized, f.do(t, "GET", "/v1/organization", k.Key, nil).Status)
	// Nobody revokes another member's key.
	assert.Equal(t, http.StatusNotFound, f.do(t, "DELETE", "/v1/api-keys/"+k.ID, owner, nil).Status)
}

func TestOrganizationAndBilling(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var org apiv1.Organization
	f.mustDo(t, http.StatusOK, "PATCH", "/v1/organization", f.keys[auth.Admin], map[string]any{"name": "Renamed"}, &org)
	assert.Equal(t, "Renamed", org.Name)
	var b apiv1.Billing
	f.mustDo(t, http.StatusOK, "GET", "/v1/organization/billing", f.keys[auth.Owner], nil, &b)
	plan := b.Plan
	f.mustDo(t, http.StatusOK, "PATCH", "/v1/organization/billing", f.keys[auth.Owner], map[string]any{"plan": plan, "billing_email": "ap@a.example"}, &b)
	require.NotNil(t, b.BillingEmail)
	assert.Equal(t, "ap@a.example", *b.BillingEmail)
	// The plan sets the organization's platform limits: its own Owner
	// cannot change it (a platform administrator does), and a refused
	// patch changes nothing else either.
	other := "enterprise"
	if plan == other {
		other = "free"
	}
	r := f.do(t, "PATCH", "/v1/organization/billing", f.keys[auth.Owner], map[string]any{"plan": other, "billing_name": "Changed"})
	assert.Equal(t, http.StatusForbidden, r.Status)
	assert.Contains(t, string(r.Body), "platform's administrators")
	f.mustDo(t, http.StatusOK, "GET", "/v1/organization/billing", f.keys[auth.Owner], nil, &b)
	assert.Equal(t, plan, b.Plan)
	assert.Nil(t, b.BillingName, "the refused patch set no billing name")
	r = f.do(t, "PATCH", "/v1/organization/billing", f.keys[auth.Owner], map[string]any{"plan": "platinum", "billing_email": "nope"})
	assert.Equal(t, http.StatusUnprocessableEntity, r.Status)
	assert.ElementsMatch(t, []string{"plan", "billing_email"}, r.fields(t))
	var u apiv1.Usage
	f.mustDo(t, http.StatusOK, "GET", "/v1/organization/usage?from=2026-01-01&to=2026-01-31", f.keys[auth.Viewer], nil, &u)
	assert.Equal(t, "2026-01-01", u.From)
	assert.Empty(t, u.Days)
}
