package store

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/schedule"
)

// DefaultPoolID is the shared pool every organization may submit to.
const DefaultPoolID = apiv1.DefaultPoolID

// CronWindow pre-scales a pool inside a recurring window (KEDA cron
// trigger). It, Resources and Toleration are stored as jsonb documents,
// hence their json tags (the same field names as the API's).
type CronWindow struct {
	Timezone        string `json:"timezone"`
	Start           string `json:"start"`
	End             string `json:"end"`
	DesiredReplicas int    `json:"desired_replicas"`
}

// PauseWindow pauses a pool inside a recurring window (five-field cron start
// and end in an IANA zone); stored as a jsonb document like CronWindow.
type PauseWindow struct {
	Start    string `json:"start"`
	End      string `json:"end"`
	Timezone string `json:"timezone"`
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
	Name                   string            `db:"name"`
	Accelerator            string            `db:"accelerator"`
	MinReplicas            int               `db:"min_replicas"`
	MaxReplicas            int               `db:"max_replicas"`
	PollingIntervalSeconds int               `db:"polling_interval_seconds"`
	TargetQueueLength      int               `db:"target_queue_length"`
	BackfillMaxReplicas    int               `db:"backfill_max_replicas"`
	WarmIdleSeconds        int               `db:"warm_idle_seconds"`
	JobsPerPod             int               `db:"jobs_per_pod"`
	CronWindows            []CronWindow      `db:"cron_windows"`
	Resources              Resources         `db:"resources"`
	NodeSelector           map[string]string `db:"node_selector"`
	Tolerations            []Toleration      `db:"tolerations"`
	PauseWindows           []PauseWindow     `db:"pause_windows"`
}

// DefaultPoolSettings are what a new pool gets for every field not given:
// the API contract's defaults.
func DefaultPoolSettings() PoolSettings { return PoolSettingsFromWire(apiv1.DefaultPoolSettings()) }

// Validate checks the settings with the API contract's rules
// (apiv1.PoolSettings.Validate: what KEDA and Kubernetes accept), so that
// neither the API nor the operator's default pool ever stores a pool the
// operator cannot reconcile, and parses the pause windows' cron
// expressions (internal/schedule), which the contract package, linking
// only the standard library, cannot.
func (p PoolSettings) Validate() error {
	var errs apiv1.FieldErrors
	if err := p.Wire().Validate(); err != nil {
		if !errors.As(err, &errs) {
			return err
		}
	}
	_, werrs := schedule.Parse(p.Wire().PauseWindows)
	seen := make(map[string]bool, len(errs))
	for _, e := range errs {
		seen[e.Field] = true
	}
	for _, e := range werrs.Prefixed("pause_windows") {
		if !seen[e.Field] {
			errs = append(errs, e)
			seen[e.Field] = true
		}
	}
	return errs.Err()
}

// Wire returns the settings as the API contract spells them. The jsonb
// documents (cron windows, resources, tolerations) have the same fields, so
// the mapping is a copy.
func (p PoolSettings) Wire() apiv1.PoolSettings {
	w := apiv1.PoolSettings{
		Name: p.Name, Accelerator: p.Accelerator, MinReplicas: p.MinReplicas, MaxReplicas: p.MaxReplicas,
		PollingIntervalSeconds: p.PollingIntervalSeconds, TargetQueueLength: p.TargetQueueLength,
		BackfillMaxReplicas: p.BackfillMaxReplicas, WarmIdleSeconds: p.WarmIdleSeconds, JobsPerPod: p.JobsPerPod, Resources: apiv1.Resources(p.Resources), NodeSelector: p.NodeSelector,
	}
	if p.CronWindows != nil {
		w.CronWindows = make([]apiv1.CronWindow, len(p.CronWindows))
		for i, c := range p.CronWindows {
			w.CronWindows[i] = apiv1.CronWindow(c)
		}
	}
	if p.Tolerations != nil {
		w.Tolerations = make([]apiv1.Toleration, len(p.Tolerations))
		for i, t := range p.Tolerations {
			w.Tolerations[i] = apiv1.Toleration(t)
		}
	}
	if p.PauseWindows != nil {
		w.PauseWindows = make([]apiv1.PauseWindow, len(p.PauseWindows))
		for i, pw := range p.PauseWindows {
			w.PauseWindows[i] = apiv1.PauseWindow(pw)
		}
	}
	return w
}

// PoolSettingsFromWire is the inverse of PoolSettings.Wire.
func PoolSettingsFromWire(w apiv1.PoolSettings) PoolSettings {
	p := PoolSettings{
		Name: w.Name, Accelerator: w.Accelerator, MinReplicas: w.MinReplicas, MaxReplicas: w.MaxReplicas,
		PollingIntervalSeconds: w.PollingIntervalSeconds, TargetQueueLength: w.TargetQueueLength,
		BackfillMaxReplicas: w.BackfillMaxReplicas, WarmIdleSeconds: w.WarmIdleSeconds, JobsPerPod: w.JobsPerPod, Resources: Resources(w.Resources), NodeSelector: w.NodeSelector,
	}
	if w.CronWindows != nil {
		p.CronWindows = make([]CronWindow, len(w.CronWindows))
		for i, c := range w.CronWindows {
			p.CronWindows[i] = CronWindow(c)
		}
	}
	if w.Tolerations != nil {
		p.Tolerations = make([]Toleration, len(w.Tolerations))
		for i, t := range w.Tolerations {
			p.Tolerations[i] = Toleration(t)
		}
	}
	if w.PauseWindows != nil {
		p.PauseWindows = make([]PauseWindow, len(w.PauseWindows))
		for i, pw := range w.PauseWindows {
			p.PauseWindows[i] = PauseWindow(pw)
		}
	}
	return p
}

// Pool is a worker pool row.
type Pool struct {
	ID    string     `db:"id"`
	OrgID *uuid.UUID `db:"org_id"`
	PoolSettings
	Status string `db:"status"`
	// PausedBy is apiv1.PausedBySchedule or apiv1.PausedByManual while the
	// pool is paused, nil while it runs.
	PausedBy *string `db:"paused_by"`
	// ScheduleEdgeAppliedAt is the latest pause-window edge applied to the
	// pool (nil until its windows are first evaluated).
	ScheduleEdgeAppliedAt *time.Time `db:"schedule_edge_applied_at"`
	CreatedAt             time.Time  `db:"created_at"`
	UpdatedAt             time.Time  `db:"updated_at"`
	// PolicyViolation says why the pool is outside the platform policy
	// (RecordPolicyViolations); nil while it complies.
	PolicyViolation   *string    `db:"policy_violation"`
	PolicyViolationAt *time.Time `db:"policy_violation_at"`
}

// Shared reports whether the pool is the platform's shared pool.
func (p Pool) Shared() bool { return p.OrgID == nil }

// PodJobs is how many jobs an encode pod of the pool runs before it exits,
// as the operator and `mpegflow dev` tell it: jobs_per_pod, but always 1 on
// the shared pool whatever its row says. The shared pool's pods serve
// every organization, and a pod that ran one organization's media must
// never run another's job; the API and a table constraint refuse more, and
// this holds should either be bypassed.
func (p Pool) PodJobs() int {
	if p.Shared() {
		return 1
	}
	return p.JobsPerPod
}

const poolColumns = `id, org_id, name, accelerator, min_replicas, max_replicas, polling_interval_seconds,
	target_queue_length, backfill_max_replicas, warm_idle_seconds, jobs_per_pod, cron_windows, resources, node_selector, tolerations,
	pause_windows, status, paused_by, schedule_edge_applied_at, created_at, updated_at, policy_violation, policy_violation_at`

func newPoolID() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return "p" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// CreatePool creates a dedicated pool for orgID, unchecked (tests and
// tools; the API uses CreateGuardedPool).
func (s *Store) CreatePool(ctx context.Context, orgID uuid.UUID, set PoolSettings) (Pool, error) {
	return s.CreateGuardedPool(ctx, orgID, set, nil)
}

// PoolGuard checks a dedicated pool's settings before they are stored:
// plan is its organization's plan, index its place among the
// organization's pools by age and others the organization's other pools
// (what apiv1.PlanPolicy.CheckPool wants). Its error aborts the write.
type PoolGuard func(plan string, set PoolSettings, index int, others []PoolSettings) error

// orgPoolsLocked locks the organization's row, so that pool writes of one
// organization are checked one at a time, and returns its plan and its
// pools other than except, oldest first, with the number older than except.
func orgPoolsLocked(ctx context.Context, tx pgx.Tx, orgID uuid.UUID, except string) (plan string, others []PoolSettings, older int, err error) {
	if err := tx.QueryRow(ctx, `SELECT plan FROM organizations WHERE id = $1 FOR UPDATE`, orgID).Scan(&plan); err != nil {
		return "", nil, 0, mapErr(err, "organization")
	}
	rows, _ := tx.Query(ctx, `SELECT `+poolColumns+` FROM worker_pools WHERE org_id = $1 ORDER BY created_at, id`, orgID)
	ps, err := pgx.CollectRows(rows, pgx.RowToStructByName[Pool])
	if err != nil {
		return "", nil, 0, mapErr(err, "pools")
	}
	older = -1
	for i, p := range ps {
		if p.ID == except {
			older = i
			continue
		}
		others = append(others, p.PoolSettings)
	}
	if older < 0 {
		older = len(others)
	}
	return plan, others, older, nil
}

// CreateGuardedPool creates a dedicated pool for orgID once guard (when
// not nil) accepts it, with the organization locked so that concurrent
// creates cannot together pass a ceiling each passes alone.
func (s *Store) CreateGuardedPool(ctx context.Context, orgID uuid.UUID, set PoolSettings, guard PoolGuard) (Pool, error) {
	var out Pool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if guard != nil {
			plan, others, index, err := orgPoolsLocked(ctx, tx, orgID, "")
			if err != nil {
				return err
			}
			if err := guard(plan, set, index, others); err != nil {
				return err
			}
		}
		rows, _ := tx.Query(ctx, `
		INSERT INTO worker_pools (id, org_id, name, accelerator, min_replicas, max_replicas,
			polling_interval_seconds, target_queue_length, backfill_max_replicas, cron_windows,
			resources, node_selector, tolerations, warm_idle_seconds, pause_windows, jobs_per_pod)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
		RETURNING `+poolColumns,
			newPoolID(), orgID, set.Name, set.Accelerator, set.MinReplicas, set.MaxReplicas,
			set.PollingIntervalSeconds, set.TargetQueueLength, set.BackfillMaxReplicas, set.CronWindows,
			set.Resources, set.NodeSelector, set.Tolerations, set.WarmIdleSeconds, pauseWindowsOrEmpty(set.PauseWindows),
			set.JobsPerPod)
		p, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Pool])
		out = p
		return mapErr(err, "pool")
	})
	return out, err
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

// PoolOrg returns the organization that owns pool id, nil for the shared
// pool; ErrNotFound when there is no such pool. A pool's organization
// never changes.
func (s *Store) PoolOrg(ctx context.Context, id string) (*uuid.UUID, error) {
	var org *uuid.UUID
	err := s.pool.QueryRow(ctx, `SELECT org_id FROM worker_pools WHERE id = $1`, id).Scan(&org)
	return org, mapErr(err, "pool")
}

// UpdatePool replaces a pool's settings with the result of edit, which gets
// the current settings; the row is locked meanwhile so edits do not race.
func (s *Store) UpdatePool(ctx context.Context, sc PoolScope, id string, edit func(*PoolSettings) error) (Pool, error) {
	return s.UpdateGuardedPool(ctx, sc, id, edit, nil)
}

// UpdateGuardedPool is UpdatePool with guard (when not nil) checking the
// edited settings of a dedicated pool before they are stored, with its
// organization locked; the shared pool is the platform's and is not
// guarded. A guarded update complies, so it clears the pool's
// policy_violation. An edit that gives the shared pool a jobs_per_pod
// other than 1 is refused with a field error, guard or not.
func (s *Store) UpdateGuardedPool(ctx context.Context, sc PoolScope, id string, edit func(*PoolSettings) error, guard PoolGuard) (Pool, error) {
	var out Pool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = updateGuardedPool(ctx, tx, sc, id, edit, guard)
		return err
	})
	return out, err
}

// errPreviewed rolls a previewed edit back.
var errPreviewed = errors.New("previewed: rolled back")

// PreviewGuardedPool answers the pool UpdateGuardedPool would make of the
// same edit, checked the same way (validation, the guard, the row lock),
// and saves nothing: the update runs and is rolled back.
func (s *Store) PreviewGuardedPool(ctx context.Context, sc PoolScope, id string, edit func(*PoolSettings) error, guard PoolGuard) (Pool, error) {
	var out Pool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		p, err := updateGuardedPool(ctx, tx, sc, id, edit, guard)
		if err != nil {
			return err
		}
		out = p
		return errPreviewed
	})
	if errors.Is(err, errPreviewed) {
		return out, nil
	}
	return Pool{}, err
}

func updateGuardedPool(ctx context.Context, tx pgx.Tx, sc PoolScope, id string, edit func(*PoolSettings) error, guard PoolGuard) (Pool, error) {
	rows, _ := tx.Query(ctx, `SELECT `+poolColumns+` FROM worker_pools WHERE id = $1 AND `+poolScopeWhere+` FOR UPDATE`, id, sc.OrgID, sc.Shared)
	cur, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Pool])
	if err != nil {
		return Pool{}, mapErr(err, "pool")
	}
	set := cur.PoolSettings
	if err := edit(&set); err != nil {
		return Pool{}, err
	}
	if cur.Shared() && set.JobsPerPod != 1 {
		// Postgres refuses it too (worker_pools_shared_one_job_per_pod);
		// this answers the field by name instead of a refused write.
		var errs apiv1.FieldErrors
		errs.Add("jobs_per_pod", "the shared pool runs one job per pod: its pods serve every organization, and a pod that ran one organization's media never runs another's job")
		return Pool{}, errs
	}
	guarded := guard != nil && cur.OrgID != nil
	if guarded {
		plan, others, index, err := orgPoolsLocked(ctx, tx, *cur.OrgID, cur.ID)
		if err != nil {
			return Pool{}, err
		}
		if err := guard(plan, set, index, others); err != nil {
			return Pool{}, err
		}
	}
	rows, _ = tx.Query(ctx, `
		UPDATE worker_pools SET name = $2, accelerator = $3, min_replicas = $4, max_replicas = $5,
			polling_interval_seconds = $6, target_queue_length = $7, backfill_max_replicas = $8,
			cron_windows = $9, resources = $10, node_selector = $11, tolerations = $12, warm_idle_seconds = $13,
			pause_windows = $14, jobs_per_pod = $16,
			-- New windows are evaluated afresh by the Schedule Evaluator.
			schedule_edge_applied_at = CASE WHEN pause_windows = $14::jsonb THEN schedule_edge_applied_at END,
			policy_violation = CASE WHEN $15 THEN NULL ELSE policy_violation END,
			policy_violation_at = CASE WHEN $15 THEN NULL ELSE policy_violation_at END,
			updated_at = now()
		WHERE id = $1 RETURNING `+poolColumns,
		id, set.Name, set.Accelerator, set.MinReplicas, set.MaxReplicas, set.PollingIntervalSeconds,
		set.TargetQueueLength, set.BackfillMaxReplicas, set.CronWindows, set.Resources, set.NodeSelector, set.Tolerations,
		set.WarmIdleSeconds, pauseWindowsOrEmpty(set.PauseWindows), guarded, set.JobsPerPod)
	out, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Pool])
	return out, mapErr(err, "pool")
}

// SetPoolStatus records a manual pause or resume (and its pool event) and
// commits: paused_by becomes manual on a pause and null on a resume; the
// schedule's last applied edge is left alone, so the next window edge
// takes over again. The caller then sets or clears the Redis pause key;
// should that fail, or the caller crash first, the queue reconciler makes
// the key follow the row.
func (s *Store) SetPoolStatus(ctx context.Context, sc PoolScope, id, status string) (Pool, error) {
	var out Pool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var was string
		err := tx.QueryRow(ctx, `SELECT status FROM worker_pools WHERE id = $1 AND `+poolScopeWhere+` FOR UPDATE`, id, sc.OrgID, sc.Shared).Scan(&was)
		if err != nil {
			return mapErr(err, "pool")
		}
		rows, _ := tx.Query(ctx, `UPDATE worker_pools SET status = $2,
				paused_by = CASE WHEN $2 = 'paused' THEN 'manual' END, updated_at = now()
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

// pauseWindowsOrEmpty stores a missing list as [] (the column is NOT NULL).
func pauseWindowsOrEmpty(ws []PauseWindow) []PauseWindow {
	if ws == nil {
		return []PauseWindow{}
	}
	return ws
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
