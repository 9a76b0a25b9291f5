package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mpegflow/mpegflow/internal/auth"
)

// User is a person; they reach organizations through memberships.
type User struct {
	ID        uuid.UUID `db:"id" json:"id"`
	Email     string    `db:"email" json:"email"`
	Name      string    `db:"name" json:"name"`
	CreatedAt time.Time `db:"created_at" json:"created_at"`
}

// Member is a user's membership in one organization.
type Member struct {
	UserID    uuid.UUID `db:"user_id" json:"user_id"`
	Email     string    `db:"email" json:"email"`
	Name      string    `db:"name" json:"name"`
	Role      auth.Role `db:"role" json:"role"`
	CreatedAt time.Time `db:"created_at" json:"created_at"`
}

func upsertUser(ctx context.Context, tx pgx.Tx, email, name string) (User, error) {
	rows, _ := tx.Query(ctx, `
		INSERT INTO users (id, email, name) VALUES ($1, $2, $3)
		ON CONFLICT (lower(email)) DO UPDATE SET name = CASE WHEN $3 = '' THEN users.name ELSE $3 END
		RETURNING id, email, name, created_at`, newID(), email, name)
	u, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[User])
	return u, mapErr(err, "user")
}

const memberSelect = `
	SELECT m.user_id, u.email, u.name, m.role, m.created_at
	FROM memberships m JOIN users u ON u.id = m.user_id`

// ListMembers lists an organization's members, oldest first.
func (s *Store) ListMembers(ctx context.Context, orgID uuid.UUID) ([]Member, error) {
	rows, _ := s.pool.Query(ctx, memberSelect+` WHERE m.org_id = $1 ORDER BY m.created_at, m.user_id`, orgID)
	ms, err := pgx.CollectRows(rows, pgx.RowToStructByName[Member])
	return ms, mapErr(err, "members")
}

// GetMember returns one member of an organization.
func (s *Store) GetMember(ctx context.Context, orgID, userID uuid.UUID) (Member, error) {
	rows, _ := s.pool.Query(ctx, memberSelect+` WHERE m.org_id = $1 AND m.user_id = $2`, orgID, userID)
	m, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Member])
	return m, mapErr(err, "member")
}

// AddMember adds the user with email (creating the user if new) with role.
func (s *Store) AddMember(ctx context.Context, orgID uuid.UUID, email, name string, role auth.Role) (Member, error) {
	var m Member
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		u, err := upsertUser(ctx, tx, email, name)
		if err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `
			WITH ins AS (
				INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, $3)
				RETURNING user_id, role, created_at)
			SELECT ins.user_id, $4::text AS email, $5::text AS name, ins.role, ins.created_at FROM ins`,
			orgID, u.ID, role, u.Email, u.Name)
		m, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Member])
		return mapErr(err, "member")
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

// SetMemberRole changes a member's role, refusing to remove the last owner.
func (s *Store) SetMemberRole(ctx context.Context, orgID, userID uuid.UUID, role auth.Role) (Member, error) {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		owners, err := lockOwners(ctx, tx, orgID)
		if err != nil {
			return err
		}
		var old auth.Role
		if err := tx.QueryRow(ctx, `SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2`, orgID, userID).Scan(&old); err != nil {
			return mapErr(err, "member")
		}
		if old == auth.Owner && role != auth.Owner && owners <= 1 {
			return conflict("an organization needs at least one owner; promote another member first")
		}
		_, err = tx.Exec(ctx, `UPDATE memberships SET role = $3, updated_at = now() WHERE org_id = $1 AND user_id = $2`, orgID, userID, role)
		return mapErr(err, "member")
	})
	if err != nil {
		return Member{}, fmt.Errorf("set role of member %s: %w", userID, err)
	}
	return s.GetMember(ctx, orgID, userID)
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
