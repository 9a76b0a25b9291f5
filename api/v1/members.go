package apiv1

import "time"

// Roles of members, lowest first. A role may do what the roles below it
// may; the platform's superadmin is no member role.
const (
	RoleViewer = "viewer"
	RoleEditor = "editor"
	RoleAdmin  = "admin"
	RoleOwner  = "owner"
)

// Member is a user's membership in the organization. Email and Name are as
// this organization gave them; UserID is the same in every organization the
// person belongs to.
type Member struct {
	UserID    string    `json:"user_id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// MemberRequest is the body of POST /v1/members: an email and a role; Name
// is what the organization calls them.
type MemberRequest struct {
	Email string `json:"email"`
	Name  string `json:"name,omitempty"`
	Role  string `json:"role"`
}

// MemberPatch is the body of PATCH /v1/members/{id}: it changes the fields
// that are set.
type MemberPatch struct {
	Role *string `json:"role,omitempty"`
	Name *string `json:"name,omitempty"`
}

// APIKey is a key's public record; the secret is shown only when the key is
// made (APIKeyCreated).
type APIKey struct {
	ID     string `json:"id"`
	UserID string `json:"user_id"`
	Name   string `json:"name"`
	// Prefix is the key's first characters, to recognize it.
	Prefix string `json:"prefix"`
	// Role is the most the key may do (keys an admin issued or an
	// invitation made, and keys made with such a key, which keep its
	// cap); a request acts with the lower of it and the member's current
	// role. Null: the member's role.
	Role *string `json:"role"`
	// CreatedBy is the member who issued the key; null when the owner made
	// it.
	CreatedBy  *string    `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// APIKeyCreated is a new key with its secret, which the server shows this
// once.
type APIKeyCreated struct {
	APIKey
	Key string `json:"key"`
}

// APIKeyRequest is the body of POST /v1/api-keys.
type APIKeyRequest struct {
	Name string `json:"name"`
}

// IssueKeyRequest is the body of POST /v1/members/{id}/api-keys.
type IssueKeyRequest struct {
	Name string `json:"name"`
	// Role is the most the key may do: at most the member's role and the
	// issuer's. Empty: the member's current role.
	Role string `json:"role,omitempty"`
}

// Invitation states (Invitation.Status), at the server's clock.
const (
	InvitationPending  = "pending"
	InvitationRedeemed = "redeemed"
	InvitationRevoked  = "revoked"
	InvitationExpired  = "expired"
)

// Invitation is a single-use, expiring token an admin gives a member, which
// the member exchanges for an API key; the token is shown only when it is
// made (InvitationCreated).
type Invitation struct {
	ID     string `json:"id"`
	UserID string `json:"user_id"`
	// Role is the most the key made from the invitation may do.
	Role       string     `json:"role"`
	CreatedBy  *string    `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	RedeemedAt *time.Time `json:"redeemed_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	// KeyID is the key the redemption made.
	KeyID *string `json:"key_id"`
	// Status is one of the Invitation* states.
	Status string `json:"status"`
}

// InvitationCreated is a new invitation with its token, shown this once.
type InvitationCreated struct {
	Invitation
	Token string `json:"token"`
}

// InvitationRequest is the body of POST /v1/members/{id}/invitations.
type InvitationRequest struct {
	// Role is the most the key made from the invitation may do (default:
	// the member's role).
	Role string `json:"role,omitempty"`
	// ExpiresInSeconds is how long the token may be redeemed (default 72 h,
	// 300 to 604800).
	ExpiresInSeconds int `json:"expires_in_seconds,omitempty"`
}

// RedeemInvitationRequest is the body of POST /v1/invitations/redeem, the
// one call that takes no API key.
type RedeemInvitationRequest struct {
	Token string `json:"token"`
	// Name names the new API key (default "invitation").
	Name string `json:"name,omitempty"`
}

// ConsoleSignIn is the body of POST /v1/console/session: the API key a
// browser signs in with, once. The answer sets the session's cookies; the
// key is not kept by the browser.
type ConsoleSignIn struct {
	APIKey string `json:"api_key"`
}

// ConsoleSession is a signed-in console: who it acts as, until when.
type ConsoleSession struct {
	OrgID string `json:"org_id"`
	Role  string `json:"role"`
	// ExpiresAt is when a session ends (absent when an API key asks).
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// BuiltinWorkflows are the built-in workflow names a job may give as
	// its workflow (the console's submit form offers them).
	BuiltinWorkflows []string `json:"builtin_workflows"`
}
