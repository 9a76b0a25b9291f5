package auth

// Permission is one row of the reference document's permission table.
type Permission string

// The rows of the table, in its order. Routes name exactly one of these.
const (
	WorkflowRead  Permission = "workflow:read"
	WorkflowWrite Permission = "workflow:write" // create, update, delete
	JobRead       Permission = "job:read"
	JobWrite      Permission = "job:write"      // create, cancel
	AssetRead     Permission = "asset:read"     // read, download
	AssetWrite    Permission = "asset:write"    // upload, delete
	WebhookManage Permission = "webhook:manage" // CRUD
	OrgRead       Permission = "org:read"       // read, usage
	OrgUpdate     Permission = "org:update"
	MembersManage Permission = "members:manage"
	BillingManage Permission = "billing:manage"
	WorkerRead    Permission = "worker:read"   // fleet health
	PoolManage    Permission = "pool:manage"   // pause, resume
	WorkerManage  Permission = "worker:manage" // drain, evict
	PlatformAdmin Permission = "platform:admin"
)

// matrix gives, for each permission, the least role that holds it. Because
// roles are ordered this is the whole table: every role at or above the
// minimum has the permission, every role below does not.
var matrix = map[Permission]Role{
	WorkflowRead:  Viewer,
	WorkflowWrite: Editor,
	JobRead:       Viewer,
	JobWrite:      Editor,
	AssetRead:     Viewer,
	AssetWrite:    Editor,
	WebhookManage: Editor,
	OrgRead:       Viewer,
	OrgUpdate:     Admin,
	MembersManage: Admin,
	BillingManage: Owner,
	WorkerRead:    Admin,
	PoolManage:    Admin,
	WorkerManage:  SuperAdmin,
	PlatformAdmin: SuperAdmin,
}

// Permissions lists every permission in the table's order.
var Permissions = []Permission{
	WorkflowRead, WorkflowWrite, JobRead, JobWrite, AssetRead, AssetWrite,
	WebhookManage, OrgRead, OrgUpdate, MembersManage, BillingManage,
	WorkerRead, PoolManage, WorkerManage, PlatformAdmin,
}

// Allowed reports whether role holds perm. Unknown permissions are denied.
func Allowed(role Role, perm Permission) bool {
	least, ok := matrix[perm]
	if !ok {
		return false
	}
	return role.AtLeast(least)
}
