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

// Invitation is the public record of a single-use token an admin made for a
// member, which the member exchanges for an API key; the token itself is
// never stored.
type Invitation struct {
	ID     uuid.UUID `db:"id"`
	OrgID  uuid.UUID `db:"org_id"`
	UserID uuid.UUID `db:"user_id"`
	// Role is the most the key made from the invitation may do.
	Role       auth.Role  `db:"role"`
	CreatedBy  *uuid.UUID `db:"created_by"`
	CreatedAt  time.Time  `db:"created_at"`
	ExpiresAt  time.Time  `db:"expires_at"`
	RedeemedAt *time.Time `db:"redeemed_at"`
	RevokedAt  *time.Time `db:"revoked_at"`
	// KeyID is the key the redemption made.
	KeyID *uuid.UUID `db:"key_id"`
}

const invitationColumns = `id, org_id, user_id, role, created_by, created_at, expires_at, redeemed_at, revoked_at, key_id`

// The states an invitation is in, as Status reports them.
const (
	InvitationPending  = "pending"
	InvitationRedeemed = "redeemed"
	InvitationRevoked  = "revoked"
	InvitationExpired  = "expired"
)

// Status says whether the invitation can still be redeemed at now.
func (i Invitation) Status(now time.Time) string {
	switch {
	case i.RedeemedAt != nil:
		return InvitationRedeemed
	case i.RevokedAt != nil:
		return InvitationRevoked
	case !now.Before(i.ExpiresAt):
		return InvitationExpired
	}
	return InvitationPending
}

// Why a redemption with the right token was refused. A token that matches
// nothing (unknown, tampered, or its member removed) is ErrNotFound instead,
// so only the holder of a real token learns its state.
var (
	ErrInvitationRedeemed = errors.New("invitation already redeemed")
	ErrInvitationRevoked  = errors.New("invitation revoked")
	ErrInvitationExpired  = errors.New("invitation expired")
	ErrOrgSuspended       = errors.New("organization suspended")
)

// NewInvitation is what CreateInvitation needs. Times come from the caller's
// clock.
type NewInvitation struct {
	OrgID     uuid.UUID
	UserID    uuid.UUID
	CreatedBy uuid.UUID
	Role      auth.Role
	CreatedAt time.Time
	ExpiresAt time.Time
}

// CreateInvitation stores an invitation for a member and returns its token,
// to show once. Whether the creator may invite that member with that role is
// the caller's check; redemption checks again that they still may.
func (s *Store) CreateInvitation(ctx context.Context, ni NewInvitation) (string, Invitation, error) {
	token, prefix, hash := auth.NewInvitationToken()
	rows, _ := s.pool.Query(ctx, `
		INSERT INTO member_invitations (id, org_id, user_id, prefix, hash, role, created_by, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		RETURNING `+invitationColumns,
		newID(), ni.OrgID, ni.UserID, prefix, hash, ni.Role, ni.CreatedBy, ni.CreatedAt, ni.ExpiresAt)
	inv, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Invitation])
	if err != nil {
		return "", Invitation{}, fmt.Errorf("create invitation for member %s: %w", ni.UserID, mapErr(err, "invitation"))
	}
	return token, inv, nil
}

// ListInvitations lists a member's invitations in an organization, newest
// first.
func (s *Store) ListInvitations(ctx context.Context, orgID, userID uuid.UUID) ([]Invitation, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT `+invitationColumns+` FROM member_invitations
		WHERE org_id = $1 AND user_id = $2 ORDER BY created_at DESC, id DESC`, orgID, userID)
	is, err := pgx.CollectRows(rows, pgx.RowToStructByName[Invitation])
	return is, mapErr(err, "invitations")
}

// RevokeInvitation withdraws an invitation that has not been redeemed;
// revoking twice is a no-op. A redeemed one is a conflict: its key is what
// to revoke.
func (s *Store) RevokeInvitation(ctx context.Context, orgID, userID, id uuid.UUID, now time.Time) (Invitation, error) {
	var inv Invitation
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `
			UPDATE member_invitations SET revoked_at = COALESCE(revoked_at, $4)
			WHERE id = $1 AND org_id = $2 AND user_id = $3 AND redeemed_at IS NULL
			RETURNING `+invitationColumns, id, orgID, userID, now)
		var err error
		inv, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Invitation])
		if !errors.Is(err, pgx.ErrNoRows) {
			return mapErr(err, "invitation")
		}
		var exists bool
		if err := tx.QueryRow(ctx, `
			SELECT EXISTS (SELECT FROM member_invitations WHERE id = $1 AND org_id = $2 AND user_id = $3)`,
			id, orgID, userID).Scan(&exists); err != nil {
			return mapErr(err, "invitation")
		}
		if exists {
			return conflict("the invitation was already redeemed; revoke the API key it made instead")
		}
		return fmt.Errorf("invitation: %w", ErrNotFound)
	})
	if err != nil {
		return Invitation{}, fmt.Errorf("revoke invitation %s: %w", id, err)
	}
	return inv, nil
}

// absentHash is compared against when no invitation has the presented
// prefix, so a miss costs the same hash comparison as a hit.
var absentHash = auth.HashKey("")

// RedeemInvitation exchanges a token for a new API key named keyName, once.
// The key belongs to the invited member, acts at most with the invitation's
// role and records its creator as issuer. The token must match in full
// (constant-time), be neither redeemed, revoked nor expired at now, its
// organization active, and its creator must still be a member who may manage
// members at the invitation's role; otherwise nothing changes. Concurrent
// redemptions of one token serialize on its row: exactly one gets a key.
func (s *Store) RedeemInvitation(ctx context.Context, token, keyName string, now time.Time) (string, APIKey, error) {
	prefix, err := auth.InvitationPrefix(token)
	if err != nil {
		return "", APIKey{}, fmt.Errorf("redeem invitation: %w", ErrNotFound)
	}
	var (
		key string
		rec APIKey
	)
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var (
			inv        Invitation
			hash       []byte
			orgStatus  string
			issuerRole *auth.Role
		)
		err := tx.QueryRow(ctx, `
			SELECT i.id, i.org_id, i.user_id, i.role, i.created_by, i.expires_at, i.redeemed_at, i.revoked_at,
				i.hash, o.status, im.role
			FROM member_invitations i
			JOIN organizations o ON o.id = i.org_id
			LEFT JOIN memberships im ON im.org_id = i.org_id AND im.user_id = i.created_by
			WHERE i.prefix = $1
			FOR UPDATE OF i`, prefix).Scan(&inv.ID, &inv.OrgID, &inv.UserID, &inv.Role, &inv.CreatedBy, &inv.ExpiresAt,
			&inv.RedeemedAt, &inv.RevokedAt, &hash, &orgStatus, &issuerRole)
		if errors.Is(err, pgx.ErrNoRows) {
			_ = auth.KeyMatches(token, absentHash)
			return fmt.Errorf("invitation: %w", ErrNotFound)
		}
		if err != nil {
			return mapErr(err, "invitation")
		}
		if !auth.KeyMatches(token, hash) {
			return fmt.Errorf("invitation: %w", ErrNotFound)
		}
		switch inv.Status(now) {
		case InvitationRedeemed:
			return ErrInvitationRedeemed
		case InvitationRevoked:
			return ErrInvitationRevoked
		case InvitationExpired:
			return ErrInvitationExpired
		}
		if issuerRole == nil || !auth.Allowed(*issuerRole, auth.MembersManage) || !issuerRole.AtLeast(inv.Role) {
			return fmt.Errorf("its creator may no longer manage members at role %s: %w", inv.Role, ErrInvitationRevoked)
		}
		if orgStatus != "active" {
			return ErrOrgSuspended
		}
		key, rec, err = insertKey(ctx, tx, inv.OrgID, inv.UserID, keyName, keyGrant{role: &inv.Role, createdBy: inv.CreatedBy})
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE member_invitations SET redeemed_at = $2, key_id = $3 WHERE id = $1`, inv.ID, now, rec.ID)
		return mapErr(err, "invitation")
	})
	if err != nil {
		return "", APIKey{}, fmt.Errorf("redeem invitation: %w", err)
	}
	return key, rec, nil
}
