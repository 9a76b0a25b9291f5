package store

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mpegflow/mpegflow/internal/validation"
)

// DefaultPoolID is the shared pool every organization may submit to.
const DefaultPoolID = "default"

// CronWindow pre-scales a pool inside a recurring window (KEDA cron trigger).
type CronWindow struct {
	Timezone        string `json:"timezone"`
	Start           string `json:"start"`
	End             string `json:"end"`
	DesiredReplicas int    `json:"desired_replicas"`
}

// Resources are the encode pod's requests and limits (Kubernetes quantities).
type Resources struct {
	CPURequest    string `json:"cpu_request,omitempty"`
	MemoryRequest string `json:"memory_request,omitempty"`
	CPULimit      string `json:"cpu_limit,omitempty"`
	MemoryLimit   string `json:"memory_limit,omitempty"`
}

// Toleration mirrors the fields of a Kubernetes toleration we pass through.
type Toleration struct {
	Key      string `json:"key,omitempty"`
	Operator string `json:"operator,omitempty"`
	Value    string `json:"value,omitempty"`
	Effect   string `json:"effect,omitempty"`
}

// PoolSettings are the per-tenant scaling settings the operator turns into
// KEDA ScaledJobs (design.md, Operator).
type PoolSettings struct {
	Name                   string            `db:"name" json:"name"`
	Accelerator            string            `db:"accelerator" json:"accelerator"`
	MinReplicas            int               `db:"min_replicas" json:"min_replicas"`
	MaxReplicas            int               `db:"max_replicas" json:"max_replicas"`
	PollingIntervalSeconds int               `db:"polling_interval_seconds" json:"polling_interval_seconds"`
	TargetQueueLength      int               `db:"target_queue_length" json:"target_queue_length"`
	BackfillMaxReplicas    int               `db:"backfill_max_replicas" json:"backfill_max_replicas"`
	CronWindows            []CronWindow      `db:"cron_windows" json:"cron_windows"`
	Resources              Resources         `db:"resources" json:"resources"`
	NodeSelector           map[string]string `db:"node_selector" json:"node_selector"`
	Tolerations            []Toleration      `db:"tolerations" json:"tolerations"`
}

// DefaultPoolSettings are what a new pool gets for every field not given.
func DefaultPoolSettings() PoolSettings {
	return PoolSettings{
		Accelerator: "cpu", MinReplicas: 0, MaxReplicas: 10, PollingIntervalSeconds: 10,
		TargetQueueLength: 1, CronWindows: []CronWindow{}, NodeSelector: map[string]string{},
		Tolerations: []Toleration{},
	}
}

var (
	cronField   = regexp.MustCompile(`^[0-9*/,\-A-Za-z]+$`)
	labelKey    = regexp.MustCompile(`^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)
	labelValue  = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$`)
	quantity    = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$`)
	tolerations = map[string]bool{"": true, "NoSchedule": true, "PreferNoSchedule": true, "NoExecute": true}
)

// Validate checks the settings against what KEDA and Kubernetes accept, so
// the operator never meets a pool it cannot reconcile.
func (p PoolSettings) Validate() error {
	var errs validation.Errors
	if l := len(strings.TrimSpace(p.Name)); l == 0 || l > 100 {
		errs.Add("name", "must be 1 to 100 characters")
	}
	if p.Accelerator != "cpu" && p.Accelerator != "nvidia" {
		errs.Add("accelerator", "must be cpu or nvidia")
	}
	if p.MaxReplicas < 1 || p.MaxReplicas > 1000 {
		errs.Add("max_replicas", "must be between 1 and 1000 (pause a pool to stop it; KEDA rejects 0)")
	}
	if p.MinReplicas < 0 || (p.MaxReplicas >= 1 && p.MinReplicas >= p.MaxReplicas) {
		errs.Add("min_replicas", "must be at least 0 and less than max_replicas")
	}
	if p.PollingIntervalSeconds < 1 || p.PollingIntervalSeconds > 3600 {
		errs.Add("polling_interval_seconds", "must be between 1 and 3600")
	}
	if p.TargetQueueLength < 1 || p.TargetQueueLength > 10000 {
		errs.Add("target_queue_length", "must be between 1 and 10000")
	}
	if p.BackfillMaxReplicas < 0 || p.BackfillMaxReplicas > p.MaxReplicas {
		errs.Add("backfill_max_replicas", "must be between 0 and max_replicas")
	}
	if len(p.CronWindows) > 20 {
		errs.Add("cron_windows", "at most 20 windows")
	}
	for i, w := range p.CronWindows {
		f := fmt.Sprintf("cron_windows[%d]", i)
		if _, err := time.LoadLocation(w.Timezone); err != nil || w.Timezone == "" {
			errs.Add(f+".timezone", "must be an IANA time zone such as Europe/Paris")
		}
		cronOK := true
		for name, expr := range map[string]string{"start": w.Start, "end": w.End} {
			fs := strings.Fields(expr)
			ok := len(fs) == 5
			for _, x := range fs {
				ok = ok && cronField.MatchString(x)
			}
			if !ok {
				errs.Add(f+"."+name, "must be a five-field cron expression such as \"55 7 * * 1-5\"")
				cronOK = false
			}
		}
		if cronOK && strings.Join(strings.Fields(w.Start), " ") == strings.Join(strings.Fields(w.End), " ") {
			errs.Add(f+".end", "must differ from start (KEDA rejects a window that starts and ends at the same time)")
		}
		if w.DesiredReplicas < 1 || w.DesiredReplicas > p.MaxReplicas {
			errs.Add(f+".desired_replicas", "must be between 1 and max_replicas")
		}
	}
	for name, q := range map[string]string{"cpu_request": p.Resources.CPURequest, "memory_request": p.Resources.MemoryRequest, "cpu_limit": p.Resources.CPULimit, "memory_limit": p.Resources.MemoryLimit} {
		if q != "" && !quantity.MatchString(q) {
			errs.Add("resources."+name, "must be a Kubernetes quantity such as 500m or 2Gi")
		}
	}
	for k, v := range p.NodeSelector {
		if !labelKey.MatchString(k) || !labelValue.MatchString(v) {
			errs.Add("node_selector."+k, "must be a valid Kubernetes label key and value")
		}
	}
	for i, t := range p.Tolerations {
		f := fmt.Sprintf("tolerations[%d]", i)
		if t.Operator != "" && t.Operator != "Equal" && t.Operator != "Exists" {
			errs.Add(f+".operator", "must be Equal or Exists")
		}
		if !tolerations[t.Effect] {
			errs.Add(f+".effect", "must be NoSchedule, PreferNoSchedule or NoExecute")
		}
		if t.Key != "" && !labelKey.MatchString(t.Key) {
			errs.Add(f+".key", "must be a valid Kubernetes label key")
		}
		// Kubernetes' own rules for a toleration, so that the operator
		// never renders one the API server refuses.
		switch {
		case t.Operator == "Exists" && t.Value != "":
			errs.Add(f+".value", "must be empty when the operator is Exists")
		case t.Operator != "Exists" && !labelValue.MatchString(t.Value):
			errs.Add(f+".value", "must be a valid Kubernetes label value (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)")
		}
		if t.Key == "" && t.Operator != "Exists" {
			errs.Add(f+".operator", "must be Exists when the key is empty (a toleration of every taint)")
		}
	}
	return errs.Err()
}

// Pool is a worker pool row.
type Pool struct {
	ID    string     `db:"id" json:"id"`
	OrgID *uuid.UUID `db:"org_id" json:"org_id"`
	PoolSettings
	Status    string    `db:"status" json:"status"`
	CreatedAt time.Time `db:"created_at" json:"created_at"`
	UpdatedAt time.Time `db:"updated_at" json:"updated_at"`
}

// Shared reports whether the pool is the platform's shared pool.
func (p Pool) Shared() bool { return p.OrgID == nil }

const poolColumns = `id, org_id, name, accelerator, min_replicas, max_replicas, polling_interval_seconds,
	target_queue_length, backfill_max_replicas, cron_windows, resources, node_selector, tolerations,
	status, created_at, updated_at`

func newPoolID() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return "p" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// CreatePool creates a dedicated pool for orgID.
func (s *Store) CreatePool(ctx context.Context, orgID uuid.UUID, set PoolSettings) (Pool, error) {
	rows, _ := s.pool.Query(ctx, `
		INSERT INTO worker_pools (id, org_id, name, accelerator, min_replicas, max_replicas,
			polling_interval_seconds, target_queue_length, backfill_max_replicas, cron_windows,
			resources, node_selector, tolerations)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		RETURNING `+poolColumns,
		newPoolID(), orgID, set.Name, set.Accelerator, set.MinReplicas, set.MaxReplicas,
		set.PollingIntervalSeconds, set.TargetQueueLength, set.BackfillMaxReplicas, set.CronWindows,
		set.Resources, set.NodeSelector, set.Tolerations)
	p, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Pool])
	return p, mapErr(err, "pool")
}

// PoolScope says which pools a caller may see or change: its own
// organization's, plus the shared pool when Shared is set.
type PoolScope struct {
	OrgID  uuid.UUID
	Shared bool
}

const poolScopeWhere = `(org_id = $2 OR ($3 AND org_id IS NULL))`

// ListPools lists the pools in scope: the shared pool first, then by age.
func (s *Store) ListPools(ctx context.Context, sc PoolScope) ([]Pool, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+poolColumns+` FROM worker_pools
		WHERE $1::int IS NULL AND `+poolScopeWhere+` ORDER BY org_id NULLS FIRST, created_at, id`, nil, sc.OrgID, sc.Shared)
	ps, err := pgx.CollectRows(rows, pgx.RowToStructByName[Pool])
	return ps, mapErr(err, "pools")
}

// ListAllPools lists every pool (the operator's view).
func (s *Store) ListAllPools(ctx context.Context) ([]Pool, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+poolColumns+` FROM worker_pools ORDER BY id`)
	ps, err := pgx.CollectRows(rows, pgx.RowToStructByName[Pool])
	return ps, mapErr(err, "pools")
}

// GetPool returns one pool in scope.
func (s *Store) GetPool(ctx context.Context, sc PoolScope, id string) (Pool, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+poolColumns+` FROM worker_pools WHERE id = $1 AND `+poolScopeWhere, id, sc.OrgID, sc.Shared)
	p, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Pool])
	return p, mapErr(err, "pool")
}

// UpdatePool replaces a pool's settings with the result of edit, which gets
// the current settings; the row is locked meanwhile so edits do not race.
func (s *Store) UpdatePool(ctx context.Context, sc PoolScope, id string, edit func(*PoolSettings) error) (Pool, error) {
	var out Pool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT `+poolColumns+` FROM worker_pools WHERE id = $1 AND `+poolScopeWhere+` FOR UPDATE`, id, sc.OrgID, sc.Shared)
		cur, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Pool])
		if err != nil {
			return mapErr(err, "pool")
		}
		set := cur.PoolSettings
		if err := edit(&set); err != nil {
			return err
		}
		rows, _ = tx.Query(ctx, `
			UPDATE worker_pools SET name = $2, accelerator = $3, min_replicas = $4, max_replicas = $5,
				polling_interval_seconds = $6, target_queue_length = $7, backfill_max_replicas = $8,
				cron_windows = $9, resources = $10, node_selector = $11, tolerations = $12, updated_at = now()
			WHERE id = $1 RETURNING `+poolColumns,
			id, set.Name, set.Accelerator, set.MinReplicas, set.MaxReplicas, set.PollingIntervalSeconds,
			set.TargetQueueLength, set.BackfillMaxReplicas, set.CronWindows, set.Resources, set.NodeSelector, set.Tolerations)
		out, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Pool])
		return mapErr(err, "pool")
	})
	return out, err
}

// SetPoolStatus records a pause or resume (and its pool event) and commits.
// The caller then sets or clears the Redis pause key; should that fail, or
// the caller crash first, the queue reconciler makes the key follow the row.
func (s *Store) SetPoolStatus(ctx context.Context, sc PoolScope, id, status string) (Pool, error) {
	var out Pool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var was string
		err := tx.QueryRow(ctx, `SELECT status FROM worker_pools WHERE id = $1 AND `+poolScopeWhere+` FOR UPDATE`, id, sc.OrgID, sc.Shared).Scan(&was)
		if err != nil {
			return mapErr(err, "pool")
		}
		rows, _ := tx.Query(ctx, `UPDATE worker_pools SET status = $2, updated_at = now()
			WHERE id = $1 RETURNING `+poolColumns, id, status)
		p, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Pool])
		if err != nil {
			return mapErr(err, "pool")
		}
		out = p
		if was != status {
			return insertPoolEvent(ctx, tx, p)
		}
		return nil
	})
	return out, err
}

// DeletePool deletes a dedicated pool that has no unfinished jobs and
// commits. The caller then removes the pool's Redis keys; what it leaves
// (Redis failed, or the caller crashed first) the queue reconciler drops.
func (s *Store) DeletePool(ctx context.Context, orgID uuid.UUID, id string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var got string
		if err := tx.QueryRow(ctx, `SELECT id FROM worker_pools WHERE id = $1 AND org_id = $2 FOR UPDATE`, id, orgID).Scan(&got); err != nil {
			return mapErr(err, "pool")
		}
		var active int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE pool_id = $1 AND status IN ('queued', 'running', 'retry_wait')`, id).Scan(&active); err != nil {
			return mapErr(err, "pool jobs")
		}
		if active > 0 {
			return conflict("pool %s still has %d unfinished jobs; cancel them or let them finish first", id, active)
		}
		_, err := tx.Exec(ctx, `DELETE FROM worker_pools WHERE id = $1`, id)
		return mapErr(err, "pool")
	})
}
