package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
)

// Organization is a tenant. Everything customers create belongs to one.
type Organization struct {
	ID           uuid.UUID `db:"id"`
	Name         string    `db:"name"`
	Status       string    `db:"status"`
	Plan         string    `db:"plan"`
	BillingEmail *string   `db:"billing_email"`
	BillingName  *string   `db:"billing_name"`
	JobQuota     int       `db:"job_quota"`
	// ShareWeight overrides the plan's fair-share weight; nil = the plan's.
	ShareWeight *int      `db:"share_weight"`
	CreatedAt   time.Time `db:"created_at"`
	UpdatedAt   time.Time `db:"updated_at"`
}

const orgColumns = `id, name, status, plan, billing_email, billing_name, job_quota, share_weight, created_at, updated_at`

// Bootstrap is what `mpegflow admin bootstrap` creates.
type Bootstrap struct {
	Org  Organization
	User User
	Key  string // shown once, never stored
}

// BootstrapOrg creates an organization, its first member with role and an
// API key for that member, all in one transaction.
func (s *Store) BootstrapOrg(ctx context.Context, orgName, email string, role auth.Role) (Bootstrap, error) {
	var out Bootstrap
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		org, err := insertOrg(ctx, tx, orgName)
		if err != nil {
			return err
		}
		user, err := ensureUser(ctx, tx, email)
		if err != nil {
			return err
		}
		if _, err := insertMember(ctx, tx, org.ID, user.ID, email, "", role); err != nil {
			return err
		}
		key, _, err := insertKey(ctx, tx, org.ID, user.ID, "bootstrap", keyGrant{})
		if err != nil {
			return err
		}
		out = Bootstrap{Org: org, User: user, Key: key}
		return nil
	})
	if err != nil {
		return Bootstrap{}, fmt.Errorf("bootstrap organization %q: %w", orgName, err)
	}
	return out, nil
}

func insertOrg(ctx context.Context, tx pgx.Tx, name string) (Organization, error) {
	rows, _ := tx.Query(ctx, `INSERT INTO organizations (id, name) VALUES ($1, $2) RETURNING `+orgColumns,
		newID(), name)
	org, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Organization])
	return org, mapErr(err, "organization")
}

// GetOrg returns one organization.
func (s *Store) GetOrg(ctx context.Context, id uuid.UUID) (Organization, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+orgColumns+` FROM organizations WHERE id = $1`, id)
	org, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Organization])
	return org, mapErr(err, "organization")
}

// OrgPatch holds the organization fields a PATCH may change; nil = unchanged.
type OrgPatch struct {
	Name         *string
	BillingEmail *string
	BillingName  *string
	Plan         *string
}

// UpdateOrg applies a patch and returns the new row.
func (s *Store) UpdateOrg(ctx context.Context, id uuid.UUID, p OrgPatch) (Organization, error) {
	rows, _ := s.pool.Query(ctx, `
		UPDATE organizations SET
			name          = COALESCE($2, name),
			billing_email = COALESCE($3, billing_email),
			billing_name  = COALESCE($4, billing_name),
			plan          = COALESCE($5, plan),
			updated_at    = now()
		WHERE id = $1
		RETURNING `+orgColumns, id, p.Name, p.BillingEmail, p.BillingName, p.Plan)
	org, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Organization])
	return org, mapErr(err, "organization")
}

// ListOrgs lists every organization (platform admin), newest first.
func (s *Store) ListOrgs(ctx context.Context, page Page) ([]Organization, error) {
	after, afterID := page.cursor()
	rows, _ := s.pool.Query(ctx, `
		SELECT `+orgColumns+` FROM organizations
		WHERE ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2))
		ORDER BY created_at DESC, id DESC LIMIT $3`, after, afterID, page.limit())
	orgs, err := pgx.CollectRows(rows, pgx.RowToStructByName[Organization])
	return orgs, mapErr(err, "organizations")
}

// SetOrgStatus suspends or reinstates an organization.
func (s *Store) SetOrgStatus(ctx context.Context, id uuid.UUID, status string) (Organization, error) {
	rows, _ := s.pool.Query(ctx, `UPDATE organizations SET status = $2, updated_at = now() WHERE id = $1 RETURNING `+orgColumns, id, status)
	org, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Organization])
	return org, mapErr(err, "organization")
}

// SetJobQuota sets how many unfinished jobs (and unexpanded batch inputs)
// an organization may have at once; batches larger than what is left are
// refused whole.
func (s *Store) SetJobQuota(ctx context.Context, id uuid.UUID, quota int) (Organization, error) {
	rows, _ := s.pool.Query(ctx, `UPDATE organizations SET job_quota = $2, updated_at = now() WHERE id = $1 RETURNING `+orgColumns, id, quota)
	org, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Organization])
	return org, mapErr(err, "organization")
}

// OrgAdminPatch is what a platform administrator changes on an
// organization: its plan (nil: unchanged) and its fair-share weight
// override (only when SetShareWeight; nil ShareWeight = the plan's default).
type OrgAdminPatch struct {
	Plan           *string
	SetShareWeight bool
	ShareWeight    *int
}

// AdminUpdateOrg applies a platform administrator's patch in one statement.
// Queued jobs get a new weight at the organization's next push or the
// queue reconciler's next round.
func (s *Store) AdminUpdateOrg(ctx context.Context, id uuid.UUID, p OrgAdminPatch) (Organization, error) {
	rows, _ := s.pool.Query(ctx, `
		UPDATE organizations SET
			plan         = COALESCE($2, plan),
			share_weight = CASE WHEN $3 THEN $4 ELSE share_weight END,
			updated_at   = now()
		WHERE id = $1
		RETURNING `+orgColumns, id, p.Plan, p.SetShareWeight, p.ShareWeight)
	org, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Organization])
	return org, mapErr(err, "organization")
}

// ShareWeights returns the fair-share weight of each organization named
// (apiv1.ShareWeight of its plan and override); ids with no row are left
// out. Pushes that have only a job's organization id read it here, never
// the claim path.
func (s *Store) ShareWeights(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]int, error) {
	type row struct {
		ID          uuid.UUID `db:"id"`
		Plan        string    `db:"plan"`
		ShareWeight *int      `db:"share_weight"`
	}
	rows, _ := s.pool.Query(ctx, `SELECT id, plan, share_weight FROM organizations WHERE id = ANY($1)`, ids)
	rs, err := pgx.CollectRows(rows, pgx.RowToStructByName[row])
	if err != nil {
		return nil, mapErr(err, "share weights")
	}
	out := make(map[uuid.UUID]int, len(rs))
	for _, r := range rs {
		out[r.ID] = apiv1.ShareWeight(r.Plan, r.ShareWeight)
	}
	return out, nil
}
