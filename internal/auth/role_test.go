package auth_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/auth"
)

func TestRolesOrderedLowestFirst(t *testing.T) {
	t.Parallel()
	assert.Equal(t, []auth.Role{"viewer", "editor", "admin", "owner", "superadmin"}, auth.Roles)

	for i, r := range auth.Roles {
		for j, other := range auth.Roles {
			assert.Equal(t, i >= j, r.AtLeast(other), "%s.AtLeast(%s)", r, other)
		}
	}
}

func TestAtLeastUnknownRole(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		r, other auth.Role
		want     bool
	}{
		"unknown is not at least viewer":   {r: "root", other: auth.Viewer, want: false},
		"unknown is not at least unknown":  {r: "root", other: "root", want: false},
		"viewer is not at least unknown":   {r: auth.Viewer, other: "root", want: false},
		"superadmin is not at least empty": {r: auth.SuperAdmin, other: "", want: false},
		"empty is not at least viewer":     {r: "", other: auth.Viewer, want: false},
		"viewer is at least viewer":        {r: auth.Viewer, other: auth.Viewer, want: true},
		"superadmin is at least owner":     {r: auth.SuperAdmin, other: auth.Owner, want: true},
		"owner is not at least superadmin": {r: auth.Owner, other: auth.SuperAdmin, want: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, tc.r.AtLeast(tc.other))
		})
	}
}

func TestParseRole(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		in      string
		want    auth.Role
		wantErr bool
	}{
		"viewer":          {in: "viewer", want: auth.Viewer},
		"editor":          {in: "editor", want: auth.Editor},
		"admin":           {in: "admin", want: auth.Admin},
		"owner":           {in: "owner", want: auth.Owner},
		"superadmin":      {in: "superadmin", want: auth.SuperAdmin},
		"empty":           {in: "", wantErr: true},
		"capitalised":     {in: "Owner", wantErr: true},
		"surrounding ws":  {in: " admin ", wantErr: true},
		"unknown":         {in: "root", wantErr: true},
		"separated super": {in: "super_admin", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := auth.ParseRole(tc.in)
			if tc.wantErr {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "viewer, editor, admin, owner, superadmin", "the error lists the valid roles")
				assert.Empty(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestLeast(t *testing.T) {
	t.Parallel()
	for i, a := range auth.Roles {
		for j, b := range auth.Roles {
			want := auth.Roles[min(i, j)]
			assert.Equal(t, want, auth.Least(a, b), "Least(%s, %s)", a, b)
		}
	}
	for _, r := range auth.Roles {
		for _, unknown := range []auth.Role{"root", ""} {
			assert.Equal(t, unknown, auth.Least(r, unknown), "an unknown role wins over %s", r)
			assert.Equal(t, unknown, auth.Least(unknown, r), "an unknown role wins over %s", r)
			for _, perm := range auth.Permissions {
				assert.False(t, auth.Allowed(auth.Least(r, unknown), perm))
			}
		}
	}
}

func TestAndBelow(t *testing.T) {
	t.Parallel()
	for _, r := range auth.Roles {
		got := r.AndBelow()
		for _, other := range auth.Roles {
			assert.Equal(t, r.AtLeast(other), slices.Contains(got, other), "%s.AndBelow() holding %s", r, other)
		}
	}
	assert.Empty(t, auth.Role("root").AndBelow(), "an unknown role may do nothing")
	assert.Equal(t, []auth.Role{auth.Viewer}, auth.Viewer.AndBelow())
}
