package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
)

// APIKey is a key's public record; the key itself is never stored.
type APIKey struct {
	ID     uuid.UUID `db:"id"`
	OrgID  uuid.UUID `db:"org_id"`
	UserID uuid.UUID `db:"user_id"`
	Name   string    `db:"name"`
	Prefix string    `db:"prefix"`
	// Role is the most the key may do, for keys an admin issued or an
	// invitation made; a request acts with the lower of it and the member's
	// current role. Nil (keys members make themselves): the member's role.
	Role *auth.Role `db:"role"`
	// CreatedBy is the member who issued the key for its owner; nil when the
	// owner made it.
	CreatedBy  *uuid.UUID `db:"created_by"`
	CreatedAt  time.Time  `db:"created_at"`
	LastUsedAt *time.Time `db:"last_used_at"`
	RevokedAt  *time.Time `db:"revoked_at"`
}

const keyColumns = `id, org_id, user_id, name, prefix, role, created_by, created_at, last_used_at, revoked_at`

// keyGrant is what a key carries besides its owner: the most it may do and
// who issued it. The zero value is a member's own key.
type keyGrant struct {
	role      *auth.Role
	createdBy *uuid.UUID
}

// Principal is who a request acts as: one member of one organization, with
// Role the lower of the member's role and the key's.
type Principal struct {
	KeyID  uuid.UUID
	OrgID  uuid.UUID
	UserID uuid.UUID
	Role   auth.Role
	// KeyRole is the most the presented key may do (APIKey.Role): nil for a
	// key the member made for themselves. Whatever this key makes or undoes
	// for its member stays within it: a key it creates carries the same
	// cap, and it may revoke only keys capped at or below it.
	KeyRole   *auth.Role
	OrgStatus string
	// ShareWeight is the organization's fair-share weight
	// (apiv1.ShareWeight of its plan and override) as read with the key.
	// The submit path queues jobs with it instead of reading it again, so
	// whoever changes the plan or the override must drop the
	// organization's cached principals, as for a status change.
	ShareWeight int
}

func insertKey(ctx context.Context, tx pgx.Tx, orgID, userID uuid.UUID, name string, g keyGrant) (string, APIKey, error) {
	key, prefix, hash := auth.NewKey()
	rows, _ := tx.Query(ctx, `
		INSERT INTO api_keys (id, org_id, user_id, name, prefix, hash, role, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		RETURNING `+keyColumns, newID(), orgID, userID, name, prefix, hash, g.role, g.createdBy)
	k, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[APIKey])
	if err != nil {
		return "", APIKey{}, mapErr(err, "api key")
	}
	return key, k, nil
}

// CreateKey makes a new key for a member; the returned string is shown once.
// capRole is the most the key may do: the cap of the key that asked for it
// (Principal.KeyRole), so that a capped key cannot make itself an uncapped
// one; nil only when a key of the member's own asked.
func (s *Store) CreateKey(ctx context.Context, orgID, userID uuid.UUID, name string, capRole *auth.Role) (string, APIKey, error) {
	var (
		key string
		rec APIKey
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		key, rec, err = insertKey(ctx, tx, orgID, userID, name, keyGrant{role: capRole})
		return err
	})
	return key, rec, err
}

// IssueKey makes a key for a member on behalf of issuerID (an admin), acting
// at most as role; the returned string is shown once. Whether the issuer may
// grant role to that member is the caller's check; whatever happens to the
// member's role later, the key never acts above it.
func (s *Store) IssueKey(ctx context.Context, orgID, userID, issuerID uuid.UUID, name string, role auth.Role) (string, APIKey, error) {
	var (
		key string
		rec APIKey
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		key, rec, err = insertKey(ctx, tx, orgID, userID, name, keyGrant{role: &role, createdBy: &issuerID})
		return err
	})
	if err != nil {
		return "", APIKey{}, fmt.Errorf("issue key for member %s: %w", userID, err)
	}
	return key, rec, nil
}

// ListKeys lists a member's keys in an organization.
func (s *Store) ListKeys(ctx context.Context, orgID, userID uuid.UUID) ([]APIKey, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE org_id = $1 AND user_id = $2 ORDER BY created_at DESC, id DESC`, orgID, userID)
	ks, err := pgx.CollectRows(rows, pgx.RowToStructByName[APIKey])
	return ks, mapErr(err, "api keys")
}

// ErrKeyAboveCap means a capped key asked to revoke a key that may do more
// than it may.
var ErrKeyAboveCap = errors.New("the key may do more than the key asking")

// RevokeKey revokes one of a member's keys; revoking twice is a no-op.
// capRole is the cap of the key asking (Principal.KeyRole; nil: a key of
// the member's own, which may revoke any of them): a capped key may revoke
// only keys capped at or below it, else ErrKeyAboveCap and nothing changes
// (a key's cap never changes, so the check cannot go stale).
func (s *Store) RevokeKey(ctx context.Context, orgID, userID, keyID uuid.UUID, capRole *auth.Role) (APIKey, error) {
	var within []string
	if capRole != nil {
		for _, r := range capRole.AndBelow() {
			within = append(within, string(r))
		}
	}
	rows, _ := s.pool.Query(ctx, `
		UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now())
		WHERE id = $1 AND org_id = $2 AND user_id = $3
			AND ($4::text IS NULL OR role = ANY ($5::text[]))
		RETURNING `+keyColumns, keyID, orgID, userID, capRole, within)
	k, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[APIKey])
	if errors.Is(err, pgx.ErrNoRows) && capRole != nil {
		// Tell a key above the cap from no key at all.
		var exists bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM api_keys WHERE id = $1 AND org_id = $2 AND user_id = $3)`,
			keyID, orgID, userID).Scan(&exists); err != nil {
			return APIKey{}, mapErr(err, "api key")
		}
		if exists {
			return APIKey{}, fmt.Errorf("api key %s: %w", keyID, ErrKeyAboveCap)
		}
	}
	return k, mapErr(err, "api key")
}

// Authenticate resolves a presented key to its principal. Unknown, revoked
// and mismatching keys all answer ErrNotFound so callers cannot tell them
// apart. last_used_at is refreshed at most once a minute per key.
func (s *Store) Authenticate(ctx context.Context, key string) (Principal, error) {
	prefix, err := auth.KeyPrefix(key)
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate: %w", ErrNotFound)
	}
	var hash []byte
	p, err := s.principal(ctx, "k.hash", `WHERE k.prefix = $1`, []any{prefix}, &hash)
	if err != nil {
		return Principal{}, err
	}
	if !auth.KeyMatches(key, hash) {
		return Principal{}, fmt.Errorf("authenticate: %w", ErrNotFound)
	}
	if _, err := s.pool.Exec(ctx, `
		UPDATE api_keys SET last_used_at = now()
		WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`, p.KeyID); err != nil {
		return Principal{}, mapErr(err, "touch api key")
	}
	return p, nil
}

// principal reads the principal of the one API key that where (a clause
// over api_keys k, after any joins it needs; args are its parameters)
// selects, and the column extraCol into extra. A revoked key, or none, is
// ErrNotFound.
func (s *Store) principal(ctx context.Context, extraCol, where string, args []any, extra any) (Principal, error) {
	var (
		p        Principal
		keyRole  *auth.Role
		revoked  *time.Time
		plan     string
		override *int
	)
	err := s.pool.QueryRow(ctx, `
		SELECT k.id, k.org_id, k.user_id, m.role, k.role, o.status, o.plan, o.share_weight, k.revoked_at, `+extraCol+`
		FROM api_keys k
		JOIN memberships m ON m.org_id = k.org_id AND m.user_id = k.user_id
		JOIN organizations o ON o.id = k.org_id
		`+where, args...).Scan(&p.KeyID, &p.OrgID, &p.UserID, &p.Role, &keyRole, &p.OrgStatus, &plan, &override, &revoked, extra)
	if err != nil {
		return Principal{}, mapErr(err, "authenticate")
	}
	if revoked != nil {
		return Principal{}, fmt.Errorf("authenticate: %w", ErrNotFound)
	}
	if keyRole != nil {
		p.Role = auth.Least(p.Role, *keyRole)
	}
	p.KeyRole = keyRole
	p.ShareWeight = apiv1.ShareWeight(plan, override)
	return p, nil
}
