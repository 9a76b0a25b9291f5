package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

// PlatformPolicy is the platform_policy row: the policy document and who
// last changed it (UpdatedBy is nil when it was seeded from configuration).
type PlatformPolicy struct {
	Policy    apiv1.PlatformPolicy `db:"document"`
	UpdatedAt time.Time            `db:"updated_at"`
	UpdatedBy *uuid.UUID           `db:"updated_by"`
}

// GetPlatformPolicy returns the stored policy, or ErrNotFound before the
// first `serve` seeded it.
func (s *Store) GetPlatformPolicy(ctx context.Context) (PlatformPolicy, error) {
	rows, _ := s.pool.Query(ctx, `SELECT document, updated_at, updated_by FROM platform_policy`)
	p, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[PlatformPolicy])
	return p, mapErr(err, "platform policy")
}

// SeedPlatformPolicy stores p only when no policy is stored yet, and says
// whether it did: the deployment's configuration is the first policy, and
// what a SuperAdmin PUT afterwards is never overwritten by a restart.
func (s *Store) SeedPlatformPolicy(ctx context.Context, p apiv1.PlatformPolicy) (bool, error) {
	doc, err := json.Marshal(p)
	if err != nil {
		return false, fmt.Errorf("encode platform policy: %w", err)
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO platform_policy (document) VALUES ($1) ON CONFLICT (singleton) DO NOTHING`, doc)
	if err != nil {
		return false, mapErr(err, "platform policy")
	}
	return tag.RowsAffected() == 1, nil
}

// PutPlatformPolicy replaces the policy (inserting it when absent) and
// records who did.
func (s *Store) PutPlatformPolicy(ctx context.Context, p apiv1.PlatformPolicy, by uuid.UUID) (PlatformPolicy, error) {
	doc, err := json.Marshal(p)
	if err != nil {
		return PlatformPolicy{}, fmt.Errorf("encode platform policy: %w", err)
	}
	rows, _ := s.pool.Query(ctx, `
		INSERT INTO platform_policy (document, updated_by) VALUES ($1, $2)
		ON CONFLICT (singleton) DO UPDATE SET document = EXCLUDED.document, updated_by = EXCLUDED.updated_by, updated_at = now()
		RETURNING document, updated_at, updated_by`, doc, by)
	out, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[PlatformPolicy])
	return out, mapErr(err, "platform policy")
}

// PolicyPool is a dedicated pool as the policy sees it: its settings and
// its organization's plan.
type PolicyPool struct {
	ID    string    `db:"id"`
	OrgID uuid.UUID `db:"org_id"`
	Plan  string    `db:"plan"`
	PoolSettings
}

// ListPolicyPools lists every dedicated pool with its organization's plan,
// oldest first (the order CheckPolicy counts pools in). The operator's
// read-only role may run it (migrations/0012_platform_policy.up.sql).
func (s *Store) ListPolicyPools(ctx context.Context) ([]PolicyPool, error) {
	return s.ListPolicyPoolsOf(ctx, nil)
}

// ListPolicyPoolsOf is ListPolicyPools for one organization's pools (every
// organization's when org is nil). The policy counts per organization, so
// one organization's pools are checked without the others'.
func (s *Store) ListPolicyPoolsOf(ctx context.Context, org *uuid.UUID) ([]PolicyPool, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT p.id, p.org_id, o.plan, p.name, p.accelerator, p.min_replicas, p.max_replicas, p.polling_interval_seconds,
			p.target_queue_length, p.backfill_max_replicas, p.warm_idle_seconds, p.jobs_per_pod, p.cron_windows, p.resources,
			p.node_selector, p.tolerations, p.pause_windows
		FROM worker_pools p JOIN organizations o ON o.id = p.org_id
		WHERE $1::uuid IS NULL OR p.org_id = $1
		ORDER BY p.created_at, p.id`, org)
	ps, err := pgx.CollectRows(rows, pgx.RowToStructByName[PolicyPool])
	return ps, mapErr(err, "policy pools")
}

// CheckPolicy checks every dedicated pool against policy and answers the
// violations of those outside it, by pool id. Pools are counted oldest
// first within their organization, so when a count or a sum is over a
// ceiling the newest pools are the ones outside the policy. The apiserver
// records the result (RecordPolicyViolations); the operator computes it
// itself and renders no ScaledJob for the pools it names.
func CheckPolicy(policy apiv1.PlatformPolicy, pools []PolicyPool) map[string]apiv1.PolicyViolations {
	out := map[string]apiv1.PolicyViolations{}
	older := map[uuid.UUID][]apiv1.PoolSettings{}
	for _, p := range pools {
		rules, _ := policy.For(p.OrgID.String(), p.Plan)
		set := p.Wire()
		if vs := rules.CheckPool(set, len(older[p.OrgID]), older[p.OrgID]); len(vs) > 0 {
			out[p.ID] = vs
		}
		older[p.OrgID] = append(older[p.OrgID], set)
	}
	return out
}

// RecordPolicyViolations sets the policy_violation of every dedicated pool
// named in violations and clears it on every other one. A violation's time
// is kept while the pool stays outside the policy, so it says since when.
func (s *Store) RecordPolicyViolations(ctx context.Context, violations map[string]string) error {
	return s.RecordPolicyViolationsOf(ctx, nil, violations)
}

// RecordPolicyViolationsOf is RecordPolicyViolations for one organization's
// pools (every organization's when org is nil): pools of other
// organizations are left as they are.
func (s *Store) RecordPolicyViolationsOf(ctx context.Context, org *uuid.UUID, violations map[string]string) error {
	doc, err := json.Marshal(violations)
	if err != nil {
		return fmt.Errorf("encode policy violations: %w", err)
	}
	_, err = s.pool.Exec(ctx, `
		UPDATE worker_pools p SET
			policy_violation = v.text,
			policy_violation_at = CASE WHEN v.text IS NULL THEN NULL ELSE COALESCE(p.policy_violation_at, now()) END
		FROM (SELECT w.id, d.value AS text FROM worker_pools w LEFT JOIN jsonb_each_text($1::jsonb) d ON d.key = w.id
		      WHERE w.org_id IS NOT NULL AND ($2::uuid IS NULL OR w.org_id = $2)) v
		WHERE p.id = v.id AND p.policy_violation IS DISTINCT FROM v.text`, doc, org)
	return mapErr(err, "record policy violations")
}
