package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mpegflow/mpegflow/internal/auth"
)

// User is a person; they reach organizations through memberships. It holds
// only what identifies the person everywhere: anything an organization says
// about them (name, the spelling of the address) is on the membership, so no
// organization can change what another sees.
type User struct {
	ID        uuid.UUID `db:"id"`
	Email     string    `db:"email"`
	CreatedAt time.Time `db:"created_at"`
}

// Member is a user's membership in one organization. Email and Name are as
// this organization gave them; UserID is the same in every organization the
// person belongs to.
type Member struct {
	UserID    uuid.UUID `db:"user_id"`
	Email     string    `db:"email"`
	Name      string    `db:"name"`
	Role      auth.Role `db:"role"`
	CreatedAt time.Time `db:"created_at"`
}

// ensureUser finds the user with email (case-insensitively) or creates one.
// It never writes to an existing user: that row is shared by every
// organization the person belongs to.
func ensureUser(ctx context.Context, tx pgx.Tx, email string) (User, error) {
	const cols = `id, email, created_at`
	rows, _ := tx.Query(ctx, `
		INSERT INTO users (id, email) VALUES ($1, $2)
		ON CONFLICT (lower(email)) DO NOTHING
		RETURNING `+cols, newID(), email)
	u, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[User])
	if errors.Is(err, pgx.ErrNoRows) {
		// Someone else's row, committed before our insert gave way to it.
		rows, _ = tx.Query(ctx, `SELECT `+cols+` FROM users WHERE lower(email) = lower($1)`, email)
		u, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[User])
	}
	return u, mapErr(err, "user")
}

// insertMember adds an existing user to an organization under the name and
// address this organization gives them.
func insertMember(ctx context.Context, tx pgx.Tx, orgID, userID uuid.UUID, email, name string, role auth.Role) (Member, error) {
	rows, _ := tx.Query(ctx, `
		INSERT INTO memberships (org_id, user_id, role, email, name) VALUES ($1, $2, $3, $4, $5)
		RETURNING `+memberColumns, orgID, userID, role, email, name)
	m, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Member])
	return m, mapErr(err, "member")
}

const memberColumns = `user_id, email, name, role, created_at`

// ListMembers lists an organization's members, oldest first.
func (s *Store) ListMembers(ctx context.Context, orgID uuid.UUID) ([]Member, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+memberColumns+` FROM memberships WHERE org_id = $1 ORDER BY created_at, user_id`, orgID)
	ms, err := pgx.CollectRows(rows, pgx.RowToStructByName[Member])
	return ms, mapErr(err, "members")
}

// GetMember returns one member of an organization.
func (s *Store) GetMember(ctx context.Context, orgID, userID uuid.UUID) (Member, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+memberColumns+` FROM memberships WHERE org_id = $1 AND user_id = $2`, orgID, userID)
	m, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Member])
	return m, mapErr(err, "member")
}

// AddMember adds the person with email (creating the user if new) with role,
// under the name this organization gives them ("" for none). Nothing another
// organization can see changes.
func (s *Store) AddMember(ctx context.Context, orgID uuid.UUID, email, name string, role auth.Role) (Member, error) {
	var m Member
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		u, err := ensureUser(ctx, tx, email)
		if err != nil {
			return err
		}
		m, err = insertMember(ctx, tx, orgID, u.ID, email, name, role)
		return err
	})
	if err != nil {
		return Member{}, fmt.Errorf("add member %s: %w", email, err)
	}
	return m, nil
}

// lockOwners locks the organization's memberships and counts owners, so two
// concurrent demotions cannot both pass the last-owner check.
func lockOwners(ctx context.Context, tx pgx.Tx, orgID uuid.UUID) (int, error) {
	var n int
	err := tx.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE role = 'owner') FROM (
			SELECT role FROM memberships WHERE org_id = $1 FOR UPDATE) m`, orgID).Scan(&n)
	return n, mapErr(err, "memberships")
}

// MemberPatch holds the membership fields an update may change; nil leaves
// a field as it is.
type MemberPatch struct {
	Role *auth.Role
	Name *string
}

// UpdateMember changes a member's role and/or the name this organization
// gives them, refusing to remove the last owner.
func (s *Store) UpdateMember(ctx context.Context, orgID, userID uuid.UUID, p MemberPatch) (Member, error) {
	var m Member
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		owners, err := lockOwners(ctx, tx, orgID)
		if err != nil {
			return err
		}
		var old auth.Role
		if err := tx.QueryRow(ctx, `SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2`, orgID, userID).Scan(&old); err != nil {
			return mapErr(err, "member")
		}
		if p.Role != nil && old == auth.Owner && *p.Role != auth.Owner && owners <= 1 {
			return conflict("an organization needs at least one owner; promote another member first")
		}
		rows, _ := tx.Query(ctx, `
			UPDATE memberships SET role = COALESCE($3, role), name = COALESCE($4, name), updated_at = now()
			WHERE org_id = $1 AND user_id = $2
			RETURNING `+memberColumns, orgID, userID, p.Role, p.Name)
		m, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Member])
		return mapErr(err, "member")
	})
	if err != nil {
		return Member{}, fmt.Errorf("update member %s: %w", userID, err)
	}
	return m, nil
}

// SetMemberRole changes a member's role, refusing to remove the last owner.
func (s *Store) SetMemberRole(ctx context.Context, orgID, userID uuid.UUID, role auth.Role) (Member, error) {
	return s.UpdateMember(ctx, orgID, userID, MemberPatch{Role: &role})
}

// RemoveMember removes a member (and, by cascade, their keys in this org),
// refusing to remove the last owner.
func (s *Store) RemoveMember(ctx context.Context, orgID, userID uuid.UUID) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		owners, err := lockOwners(ctx, tx, orgID)
		if err != nil {
			return err
		}
		var role auth.Role
		if err := tx.QueryRow(ctx, `DELETE FROM memberships WHERE org_id = $1 AND user_id = $2 RETURNING role`, orgID, userID).Scan(&role); err != nil {
			return mapErr(err, "member")
		}
		if role == auth.Owner && owners <= 1 {
			return conflict("an organization needs at least one owner; promote another member first")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove member %s: %w", userID, err)
	}
	return nil
}
