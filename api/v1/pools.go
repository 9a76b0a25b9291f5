package apiv1

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// DefaultPoolID is the shared pool every organization may submit to.
const DefaultPoolID = "default"

// Pool statuses.
const (
	PoolActive = "active"
	PoolPaused = "paused"
)

// CronWindow pre-scales a pool inside a recurring window (a KEDA cron
// trigger): DesiredReplicas workers between Start and End.
type CronWindow struct {
	// Timezone is an IANA zone such as Europe/Paris.
	Timezone string `json:"timezone"`
	// Start and End are five-field cron expressions.
	Start           string `json:"start"`
	End             string `json:"end"`
	DesiredReplicas int    `json:"desired_replicas"`
}

// PauseWindow pauses a pool inside a recurring window ("we don't transcode
// overnight"): from each firing of Start until the next firing of End the
// pool is paused exactly as by POST /v1/pools/{id}/pause (claims refused at
// once, its ScaledJobs paused by the operator). A manual pause or resume
// holds until the next start or end of any window. Unlike a CronWindow,
// which only adds pre-warmed workers, a pause window stops work.
type PauseWindow struct {
	// Start and End are five-field cron expressions (minute hour
	// day-of-month month day-of-week), such as "0 22 * * *" and "0 6 * * *".
	Start string `json:"start"`
	End   string `json:"end"`
	// Timezone is the IANA zone Start and End are read in, such as
	// Europe/Paris; daylight saving time follows the zone.
	Timezone string `json:"timezone"`
}

// MaxPauseWindows is how many pause windows one pool may have.
const MaxPauseWindows = 20

// Who paused a pool (Pool.PausedBy).
const (
	PausedBySchedule = "schedule"
	PausedByManual   = "manual"
)

// Pool schedule actions (PoolChange.Action).
const (
	PoolActionPause  = "pause"
	PoolActionResume = "resume"
)

// PoolChange is the next edge of a pool's pause windows: when it comes and
// what it does (pause or resume; an edge that keeps the state still ends a
// manual override).
type PoolChange struct {
	At     time.Time `json:"at"`
	Action string    `json:"action"`
}

// Resources are the encode pod's requests and limits (Kubernetes
// quantities such as 500m or 2Gi); empty ones take the chart's defaults.
type Resources struct {
	CPURequest    string `json:"cpu_request,omitempty"`
	MemoryRequest string `json:"memory_request,omitempty"`
	CPULimit      string `json:"cpu_limit,omitempty"`
	MemoryLimit   string `json:"memory_limit,omitempty"`
}

// Toleration lets a pool's pods run on tainted nodes; it mirrors the fields
// of a Kubernetes toleration.
type Toleration struct {
	Key      string `json:"key,omitempty"`
	Operator string `json:"operator,omitempty"`
	Value    string `json:"value,omitempty"`
	Effect   string `json:"effect,omitempty"`
}

// PoolSettings are the scaling settings the operator turns into KEDA
// ScaledJobs, one per lane.
type PoolSettings struct {
	// Name is for people, 1 to 100 characters.
	Name string `json:"name"`
	// Accelerator is one of Accelerators.
	Accelerator string `json:"accelerator"`
	// MinReplicas and MaxReplicas bound the live lane's workers.
	MinReplicas int `json:"min_replicas"`
	MaxReplicas int `json:"max_replicas"`
	// PollingIntervalSeconds is how often KEDA reads the queue.
	PollingIntervalSeconds int `json:"polling_interval_seconds"`
	// TargetQueueLength is the queued jobs per worker KEDA aims at.
	TargetQueueLength int `json:"target_queue_length"`
	// BackfillMaxReplicas bounds the backfill lane (0: no backfill workers).
	BackfillMaxReplicas int `json:"backfill_max_replicas"`
	// WarmIdleSeconds is how long an idle encode pod of a pre-warmed pool
	// (min_replicas above 0, or started by a cron window) keeps waiting for
	// work before it exits, as the reference's cooldownPeriod: warm pods
	// stay warm instead of being replaced every claim wait. Pods of a cold
	// pool, and of the backfill lane, exit after one claim wait.
	WarmIdleSeconds int `json:"warm_idle_seconds"`
	// JobsPerPod is how many jobs one encode pod runs, one after another,
	// before it exits (1 to MaxJobsPerPod): above 1 saves a pod start per
	// job for short units of work (chunks, thumbnails, probes), the pod
	// claiming its next job as soon as the previous one is encoded. Only a
	// dedicated pool may set it above 1: the shared pool serves every
	// organization, and a pod that ran one tenant's media never runs
	// another tenant's job.
	JobsPerPod   int               `json:"jobs_per_pod"`
	CronWindows  []CronWindow      `json:"cron_windows"`
	Resources    Resources         `json:"resources"`
	NodeSelector map[string]string `json:"node_selector"`
	Tolerations  []Toleration      `json:"tolerations"`
	// PauseWindows pause the pool on a schedule (at most MaxPauseWindows).
	PauseWindows []PauseWindow `json:"pause_windows"`
}

// DefaultWarmIdleSeconds is the idle wait of a pre-warmed pool's pods, the
// reference's cooldownPeriod.
const DefaultWarmIdleSeconds = 300

// MaxJobsPerPod bounds PoolSettings.JobsPerPod.
const MaxJobsPerPod = 100

// DefaultPoolSettings are what a new pool gets for every field not given.
func DefaultPoolSettings() PoolSettings {
	return PoolSettings{
		Accelerator: AcceleratorCPU, MinReplicas: 0, MaxReplicas: 10, PollingIntervalSeconds: 10,
		TargetQueueLength: 1, WarmIdleSeconds: DefaultWarmIdleSeconds, JobsPerPod: 1, CronWindows: []CronWindow{}, NodeSelector: map[string]string{},
		Tolerations: []Toleration{}, PauseWindows: []PauseWindow{},
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
// the operator never meets a pool it cannot reconcile. It answers
// FieldErrors naming every offending field.
func (p PoolSettings) Validate() error {
	var errs FieldErrors
	if l := len(strings.TrimSpace(p.Name)); l == 0 || l > 100 {
		errs.Add("name", "must be 1 to 100 characters")
	}
	if !slices.Contains(Accelerators, p.Accelerator) {
		errs.Add("accelerator", "must be %s", strings.Join(Accelerators, " or "))
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
	if p.WarmIdleSeconds < 20 || p.WarmIdleSeconds > 3600 {
		errs.Add("warm_idle_seconds", "must be between 20 and 3600")
	}
	if p.JobsPerPod < 1 || p.JobsPerPod > MaxJobsPerPod {
		errs.Add("jobs_per_pod", "must be between 1 and %d", MaxJobsPerPod)
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
	validatePauseWindows(&errs, p.PauseWindows)
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

// validatePauseWindows checks what can be checked without a cron parser
// (this package links only the standard library): the count, the time
// zone and five fields per expression. The API server parses the
// expressions too (internal/schedule) and names the same field paths.
func validatePauseWindows(errs *FieldErrors, ws []PauseWindow) {
	if len(ws) > MaxPauseWindows {
		errs.Add("pause_windows", "at most %d windows", MaxPauseWindows)
	}
	for i, w := range ws {
		f := fmt.Sprintf("pause_windows[%d]", i)
		if _, err := time.LoadLocation(w.Timezone); err != nil || w.Timezone == "" || w.Timezone == "Local" {
			errs.Add(f+".timezone", "must be an IANA time zone such as Europe/Paris or UTC")
		}
		for _, e := range []struct{ name, expr string }{{"start", w.Start}, {"end", w.End}} {
			fs := strings.Fields(e.expr)
			ok := len(fs) == 5
			for _, x := range fs {
				ok = ok && cronField.MatchString(x)
			}
			if !ok {
				errs.Add(f+"."+e.name, "must be a five-field cron expression (minute hour day-of-month month day-of-week) such as \"0 22 * * 1-5\"")
			}
		}
	}
}

// PoolRequest creates a pool (POST /v1/pools: absent fields take
// DefaultPoolSettings) or patches one (PATCH /v1/pools/{id}: absent fields
// stay as they are).
type PoolRequest struct {
	Name                   *string            `json:"name,omitempty"`
	Accelerator            *string            `json:"accelerator,omitempty"`
	MinReplicas            *int               `json:"min_replicas,omitempty"`
	MaxReplicas            *int               `json:"max_replicas,omitempty"`
	PollingIntervalSeconds *int               `json:"polling_interval_seconds,omitempty"`
	TargetQueueLength      *int               `json:"target_queue_length,omitempty"`
	BackfillMaxReplicas    *int               `json:"backfill_max_replicas,omitempty"`
	WarmIdleSeconds        *int               `json:"warm_idle_seconds,omitempty"`
	JobsPerPod             *int               `json:"jobs_per_pod,omitempty"`
	CronWindows            *[]CronWindow      `json:"cron_windows,omitempty"`
	Resources              *Resources         `json:"resources,omitempty"`
	NodeSelector           *map[string]string `json:"node_selector,omitempty"`
	Tolerations            *[]Toleration      `json:"tolerations,omitempty"`
	PauseWindows           *[]PauseWindow     `json:"pause_windows,omitempty"`
}

func setIf[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

// Apply sets in set the fields the request gives; lists and maps are never
// left nil, so they read [] and {} on the wire.
func (r PoolRequest) Apply(set *PoolSettings) {
	setIf(&set.Name, r.Name)
	setIf(&set.Accelerator, r.Accelerator)
	setIf(&set.MinReplicas, r.MinReplicas)
	setIf(&set.MaxReplicas, r.MaxReplicas)
	setIf(&set.PollingIntervalSeconds, r.PollingIntervalSeconds)
	setIf(&set.TargetQueueLength, r.TargetQueueLength)
	setIf(&set.BackfillMaxReplicas, r.BackfillMaxReplicas)
	setIf(&set.WarmIdleSeconds, r.WarmIdleSeconds)
	setIf(&set.JobsPerPod, r.JobsPerPod)
	setIf(&set.CronWindows, r.CronWindows)
	setIf(&set.Resources, r.Resources)
	setIf(&set.NodeSelector, r.NodeSelector)
	setIf(&set.Tolerations, r.Tolerations)
	setIf(&set.PauseWindows, r.PauseWindows)
	if set.PauseWindows == nil {
		set.PauseWindows = []PauseWindow{}
	}
	if set.CronWindows == nil {
		set.CronWindows = []CronWindow{}
	}
	if set.NodeSelector == nil {
		set.NodeSelector = map[string]string{}
	}
	if set.Tolerations == nil {
		set.Tolerations = []Toleration{}
	}
}

// Pool is a set of encode workers and its scaling settings. QueueDepth (jobs
// waiting per lane), InFlight and Workers are filled by GET /v1/pools/{id}
// and the pool actions, not by the list.
type Pool struct {
	ID string `json:"id"`
	// OrgID is the owning organization; null for the shared pool.
	OrgID *string `json:"org_id"`
	PoolSettings
	// Status is PoolActive or PoolPaused.
	Status string `json:"status"`
	// PausedBy says what paused the pool: PausedBySchedule (a pause
	// window) or PausedByManual (POST /v1/pools/{id}/pause); null while
	// it runs.
	PausedBy *string `json:"paused_by"`
	// NextChange is the next edge of the pool's pause windows; null when
	// it has none. Filled by GET /v1/pools/{id} and the pool actions.
	NextChange *PoolChange      `json:"next_change"`
	CreatedAt  time.Time        `json:"created_at"`
	UpdatedAt  time.Time        `json:"updated_at"`
	QueueDepth map[string]int64 `json:"queue_depth,omitempty"`
	// InFlight counts your organization's jobs running on the pool now;
	// Workers the pool's live workers, for your organization's own pools
	// only (the shared pool's fleet is the platform's). Filled like
	// QueueDepth.
	InFlight *int64 `json:"in_flight,omitempty"`
	Workers  *int64 `json:"workers,omitempty"`
	// PolicyViolation says why the pool is outside the platform policy
	// (docs/design/0018-platform-policy.md): the policy or the
	// organization's plan changed after the pool was made. The operator
	// does not run such a pool (no ScaledJobs) until it complies again;
	// null when it complies.
	PolicyViolation *string `json:"policy_violation"`
	// PolicyViolationAt is when the violation was first recorded.
	PolicyViolationAt *time.Time `json:"policy_violation_at"`
}

// Shared reports whether the pool is the platform's shared pool.
func (p Pool) Shared() bool { return p.OrgID == nil }

// PlanObject is one Kubernetes object of a pool's plan
// (GET /v1/pools/{id}/plan), as the operator server-side applies it:
// apiVersion, kind, metadata, spec or data, secrets redacted.
type PlanObject map[string]any
