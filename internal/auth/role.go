// Package auth holds MpegFlow's permission model — the five roles and the one
// matrix that says what each may do — and the API key format. The matrix is
// the reference deployment document's table, written down once, here.
package auth

import (
	"fmt"
	"slices"
)

// Role is a member's role in one organization. Roles are ordered: each one
// can do everything the one before it can.
type Role string

// The five roles of the reference document, lowest first.
const (
	Viewer     Role = "viewer"
	Editor     Role = "editor"
	Admin      Role = "admin"
	Owner      Role = "owner"
	SuperAdmin Role = "superadmin"
)

// Roles lists every role from least to most privileged.
var Roles = []Role{Viewer, Editor, Admin, Owner, SuperAdmin}

// ParseRole validates a role name.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown role %q: want one of viewer, editor, admin, owner, superadmin", s)
}

func (r Role) rank() int {
	for i, x := range Roles {
		if x == r {
			return i
		}
	}
	return -1
}

// AtLeast reports whether r is other or above it. An unknown role on either
// side answers false, so a typo can never grant anything.
func (r Role) AtLeast(other Role) bool {
	return r.rank() >= other.rank() && r.rank() >= 0 && other.rank() >= 0
}

// AndBelow lists r and every role before it: the roles r may do all of. An
// unknown role lists none.
func (r Role) AndBelow() []Role {
	if r.rank() < 0 {
		return nil
	}
	return slices.Clone(Roles[:r.rank()+1])
}

// Least returns the less privileged of two roles: what a key capped at one
// role, held by a member with the other, may do. An unknown role on either
// side wins, and AtLeast then denies it everything.
func Least(a, b Role) Role {
	switch {
	case a.rank() < 0:
		return a
	case b.rank() < 0, a.AtLeast(b):
		return b
	default:
		return a
	}
}
