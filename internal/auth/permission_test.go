package auth_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/auth"
)

// referenceRow is one row of the table "Permission model in production" in
// /work/shared/reference/k8s-deployment.txt, transcribed by hand so the test
// does not share a single byte with the code it checks. Columns are Viewer,
// Editor, Admin, Owner, SuperAdmin; ✅ is true, ─ is false.
type referenceRow struct {
	label string // the row's wording in the document
	perm  auth.Permission
	roles [5]bool
}

const (
	y = true  // ✅
	n = false // ─
)

var referenceTable = []referenceRow{
	{"Workflow Read", auth.WorkflowRead, [5]bool{y, y, y, y, y}},
	{"Workflow Create/Update/Delete", auth.WorkflowWrite, [5]bool{n, y, y, y, y}},
	{"Job Read", auth.JobRead, [5]bool{y, y, y, y, y}},
	{"Job Create/Cancel", auth.JobWrite, [5]bool{n, y, y, y, y}},
	{"Asset Read/Download", auth.AssetRead, [5]bool{y, y, y, y, y}},
	{"Asset Upload/Delete", auth.AssetWrite, [5]bool{n, y, y, y, y}},
	{"Webhook CRUD", auth.WebhookManage, [5]bool{n, y, y, y, y}},
	{"Organization Read/Usage", auth.OrgRead, [5]bool{y, y, y, y, y}},
	{"Organization Update", auth.OrgUpdate, [5]bool{n, n, y, y, y}},
	{"Manage Members", auth.MembersManage, [5]bool{n, n, y, y, y}},
	{"Manage Billing", auth.BillingManage, [5]bool{n, n, n, y, y}},
	{"Worker Read (fleet health)", auth.WorkerRead, [5]bool{n, n, y, y, y}},
	{"Pool Manage (pause/resume)", auth.PoolManage, [5]bool{n, n, y, y, y}},
	{"Worker Manage (drain/evict)", auth.WorkerManage, [5]bool{n, n, n, n, y}},
	{"Platform Admin", auth.PlatformAdmin, [5]bool{n, n, n, n, y}},
}

// referenceRoles are the table's columns, left to right.
var referenceRoles = [5]auth.Role{"viewer", "editor", "admin", "owner", "superadmin"}

func TestPermissionMatrixMatchesReference(t *testing.T) {
	t.Parallel()
	require.Len(t, referenceTable, 15, "the reference table has 15 rows")

	for _, row := range referenceTable {
		t.Run(row.label, func(t *testing.T) {
			t.Parallel()
			for i, role := range referenceRoles {
				assert.Equal(t, row.roles[i], auth.Allowed(role, row.perm),
					"%s for %s: reference says %v", row.label, role, row.roles[i])
			}
		})
	}
}

func TestPermissionsListsTheReferenceRowsInOrder(t *testing.T) {
	t.Parallel()
	want := make([]auth.Permission, len(referenceTable))
	for i, row := range referenceTable {
		want[i] = row.perm
	}
	assert.Equal(t, want, auth.Permissions)
}

func TestAllowedDeniesUnknowns(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		role auth.Role
		perm auth.Permission
	}{
		"unknown permission for superadmin": {auth.SuperAdmin, auth.Permission("job:destroy")},
		"empty permission":                  {auth.SuperAdmin, ""},
		"unknown role, viewer permission":   {auth.Role("root"), auth.JobRead},
		"empty role":                        {"", auth.WorkflowRead},
		"role with different case":          {auth.Role("Owner"), auth.JobRead},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			assert.False(t, auth.Allowed(tc.role, tc.perm))
		})
	}
}
