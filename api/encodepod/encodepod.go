// Package encodepod is the contract between what starts an encode pod and
// the encoder inside it: the pod's environment (names, defaults, how the
// encoder parses each variable and how a writer renders it) and the
// readiness file. The operator renders it into its ScaledJobs' Job
// template, `mpegflow dev`'s local executor into each encode process, and
// the encoder (`mpegflow encode`) reads it with Parse; one table, Vars,
// serves all three, so a variable cannot be renamed or re-defaulted on one
// side only.
//
// It imports only the standard library: the operator links it without
// linking the encoder, and the encoder without linking the operator.
package encodepod

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

// ReadyFile is written into the scratch directory (MPEGFLOW_SCRATCH_DIR)
// once the encoder holds a claim. The pod's exec readiness probe checks for
// it, and the local executor likewise, so KEDA (and its local stand-in)
// counts the pod as pending until it really has work.
const ReadyFile = "claimed"

// MaxClaimWait bounds MPEGFLOW_CLAIM_WAIT, as the coordinator caps a long poll.
const MaxClaimWait = 30 * time.Second

// MaxIdleWait bounds MPEGFLOW_IDLE_WAIT.
const MaxIdleWait = time.Hour

// MaxJobsPerPod bounds MPEGFLOW_JOBS_PER_POD, as the API bounds a pool's
// jobs_per_pod.
const MaxJobsPerPod = apiv1.MaxJobsPerPod

// Names of the variables, in the order Vars lists them.
const (
	EnvCoordinator = "MPEGFLOW_COORDINATOR"
	EnvPool        = "MPEGFLOW_POOL"
	EnvLane        = "MPEGFLOW_LANE"
	EnvWorkerToken = "MPEGFLOW_WORKER_TOKEN"
	EnvPodName     = "MPEGFLOW_POD_NAME"
	EnvNodeName    = "MPEGFLOW_NODE_NAME"
	EnvAccelerator = "MPEGFLOW_ACCELERATOR"
	EnvScratchDir  = "MPEGFLOW_SCRATCH_DIR"
	EnvClaimWait   = "MPEGFLOW_CLAIM_WAIT"
	EnvIdleWait    = "MPEGFLOW_IDLE_WAIT"
	EnvJobsPerPod  = "MPEGFLOW_JOBS_PER_POD"
	EnvAllowHTTP   = "MPEGFLOW_ALLOW_HTTP"
	EnvEgressAllow = "MPEGFLOW_EGRESS_ALLOW"
	EnvFFmpeg      = "MPEGFLOW_FFMPEG"
	EnvFFprobe     = "MPEGFLOW_FFPROBE"
)

// Env is what an encode pod is told through its environment. Parse fills
// every field (defaults included); Render lists what a writer sets.
type Env struct {
	Coordinator string        // host:port of the coordinator (gRPC)
	Pool        string        // the pool this pod serves
	Lane        string        // live or backfill
	WorkerToken string        // the pool's worker token
	Pod         string        // the pod's name: the worker id reported to the coordinator
	Node        string        // the node's name, reported to the coordinator
	Accelerator string        // cpu or nvidia
	ScratchDir  string        // where inputs, outputs and ReadyFile live
	ClaimWait   time.Duration // long-poll for work this long, then exit 0
	// IdleWait, when longer than ClaimWait, keeps a pod of a pre-warmed
	// pool waiting for work that long, one long poll of ClaimWait after
	// another, instead of exiting after one: warm pods stay warm rather
	// than being replaced every ClaimWait. Zero: one long poll.
	IdleWait time.Duration
	// JobsPerPod is how many jobs the pod runs, one after another, before
	// it exits: the pool's jobs_per_pod, always 1 on the shared pool, whose
	// pods serve every organization. Parse answers 1 for an unset variable.
	JobsPerPod int
	AllowHTTP  bool // fetch plain http:// customer inputs (development only)
	// EgressAllow is a comma-separated list of CIDRs customer inputs may
	// come from although not public (tests and development only). The
	// encoder parses it with its SSRF guard (internal/netguard).
	EgressAllow string
	FFmpeg      string // ffmpeg binary
	FFprobe     string // ffprobe binary
}

// Source says where a pod takes a variable's value from.
type Source int

const (
	// FromValue: the value itself, in the pod template or the process
	// environment.
	FromValue Source = iota
	// FromWorkerTokenSecret: the pool's worker-token Secret; a pod
	// template never holds the token itself.
	FromWorkerTokenSecret
	// FromPodName: the pod's own name (downward API, metadata.name).
	FromPodName
	// FromNodeName: the node the pod runs on (downward API, spec.nodeName).
	FromNodeName
)

// Var is one variable of the encode pod's environment.
type Var struct {
	Name    string
	Default string // what an unset or empty variable means
	Meaning string
	// Source is where a pod takes the value from. A writer renders every
	// variable whose Source is not FromValue (a pod template by
	// reference, a local process with the value); a FromValue variable
	// only when it has a value, since an empty one means Default.
	Source Source
	get    func(Env) string
	set    func(e *Env, value string) error
}

// Vars is the encode pod's environment, in the order writers render it.
var Vars = []Var{
	{Name: EnvCoordinator, Meaning: "coordinator address host:port (required)",
		get: func(e Env) string { return e.Coordinator },
		set: func(e *Env, v string) error {
			e.Coordinator = v
			if v == "" {
				return errors.New(EnvCoordinator + " is required (host:port of the coordinator)")
			}
			return nil
		}},
	{Name: EnvPool, Default: apiv1.DefaultPoolID, Meaning: "pool id",
		get: func(e Env) string { return e.Pool },
		set: func(e *Env, v string) error { e.Pool = or(v, apiv1.DefaultPoolID); return nil }},
	{Name: EnvLane, Default: apiv1.LaneLive, Meaning: strings.Join(apiv1.Lanes, " or "),
		get: func(e Env) string { return e.Lane },
		set: func(e *Env, v string) error {
			e.Lane = or(v, apiv1.LaneLive)
			if !slices.Contains(apiv1.Lanes, e.Lane) {
				return fmt.Errorf("%s: %q is not %s", EnvLane, e.Lane, strings.Join(apiv1.Lanes, " or "))
			}
			return nil
		}},
	{Name: EnvWorkerToken, Meaning: "the pool's worker token (required)", Source: FromWorkerTokenSecret,
		get: func(e Env) string { return e.WorkerToken },
		set: func(e *Env, v string) error {
			e.WorkerToken = v
			if v == "" {
				return errors.New(EnvWorkerToken + " is required")
			}
			return nil
		}},
	{Name: EnvPodName, Default: "hostname", Meaning: "worker id reported to the coordinator", Source: FromPodName,
		get: func(e Env) string { return e.Pod },
		set: func(e *Env, v string) error {
			host, _ := os.Hostname()
			e.Pod = or(v, host)
			return nil
		}},
	{Name: EnvNodeName, Meaning: "node name reported to the coordinator", Source: FromNodeName,
		get: func(e Env) string { return e.Node },
		set: func(e *Env, v string) error { e.Node = v; return nil }},
	{Name: EnvAccelerator, Default: apiv1.AcceleratorCPU, Meaning: strings.Join(apiv1.Accelerators, " or ") + " (try NVENC, fall back to CPU encoders)",
		get: func(e Env) string { return e.Accelerator },
		set: func(e *Env, v string) error {
			e.Accelerator = or(v, apiv1.AcceleratorCPU)
			if !slices.Contains(apiv1.Accelerators, e.Accelerator) {
				return fmt.Errorf("%s: %q is not %s", EnvAccelerator, e.Accelerator, strings.Join(apiv1.Accelerators, " or "))
			}
			return nil
		}},
	{Name: EnvScratchDir, Default: "os temp dir", Meaning: "scratch directory; the readiness file '" + ReadyFile + "' is written here",
		get: func(e Env) string { return e.ScratchDir },
		set: func(e *Env, v string) error { e.ScratchDir = or(v, os.TempDir()); return nil }},
	{Name: EnvClaimWait, Default: "20s", Meaning: "how long to wait for a job before exiting 0",
		// Always rendered: "0s" (answer at once) differs from unset (20s).
		get: func(e Env) string { return e.ClaimWait.String() },
		set: func(e *Env, v string) error {
			v = or(v, "20s")
			d, err := time.ParseDuration(v)
			e.ClaimWait = d
			if err != nil || d < 0 || d > MaxClaimWait {
				return fmt.Errorf("%s: want a duration from 0s to 30s, got %q", EnvClaimWait, v)
			}
			return nil
		}},
	{Name: EnvIdleWait, Default: "the claim wait", Meaning: "how long an idle pod of a pre-warmed pool keeps waiting for a job, in long polls of the claim wait, before exiting 0 (at most 1h)",
		get: func(e Env) string {
			if e.IdleWait == 0 {
				return ""
			}
			return e.IdleWait.String()
		},
		set: func(e *Env, v string) error {
			e.IdleWait = 0
			if v == "" {
				return nil
			}
			d, err := time.ParseDuration(v)
			e.IdleWait = d
			if err != nil || d < 0 || d > MaxIdleWait {
				return fmt.Errorf("%s: want a duration from 0s to 1h, got %q", EnvIdleWait, v)
			}
			return nil
		}},
	{Name: EnvJobsPerPod, Default: "1", Meaning: "how many jobs the pod runs, one after another, before exiting 0 (1 to 100; a dedicated pool's jobs_per_pod)",
		// Not rendered for one job, so pods of pools that keep the default
		// get the environment they always had.
		get: func(e Env) string {
			if e.JobsPerPod <= 1 {
				return ""
			}
			return strconv.Itoa(e.JobsPerPod)
		},
		set: func(e *Env, v string) error {
			e.JobsPerPod = 1
			if v == "" {
				return nil
			}
			n, err := strconv.Atoi(v)
			e.JobsPerPod = n
			if err != nil || n < 1 || n > MaxJobsPerPod {
				return fmt.Errorf("%s: want a whole number from 1 to %d, got %q", EnvJobsPerPod, MaxJobsPerPod, v)
			}
			return nil
		}},
	{Name: EnvAllowHTTP, Default: "false", Meaning: "fetch plain http:// customer inputs (development only)",
		get: func(e Env) string {
			if e.AllowHTTP {
				return "true"
			}
			return ""
		},
		set: func(e *Env, v string) error {
			if v == "" {
				e.AllowHTTP = false
				return nil
			}
			b, err := strconv.ParseBool(v)
			e.AllowHTTP = b
			if err != nil {
				return fmt.Errorf("%s: want true or false, got %q", EnvAllowHTTP, v)
			}
			return nil
		}},
	{Name: EnvEgressAllow, Meaning: "CIDRs customer inputs may come from although not public (tests and development only)",
		get: func(e Env) string { return e.EgressAllow },
		set: func(e *Env, v string) error { e.EgressAllow = v; return nil }},
	{Name: EnvFFmpeg, Default: "ffmpeg", Meaning: "ffmpeg binary",
		get: func(e Env) string { return e.FFmpeg },
		set: func(e *Env, v string) error { e.FFmpeg = or(v, "ffmpeg"); return nil }},
	{Name: EnvFFprobe, Default: "ffprobe", Meaning: "ffprobe binary",
		get: func(e Env) string { return e.FFprobe },
		set: func(e *Env, v string) error { e.FFprobe = or(v, "ffprobe"); return nil }},
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Parse reads an encode pod's environment (the encoder's side): every
// variable of Vars, defaults applied, all problems joined in one error.
func Parse(getenv func(string) string) (Env, error) {
	var (
		e    Env
		errs []error
	)
	for _, v := range Vars {
		if err := v.set(&e, getenv(v.Name)); err != nil {
			errs = append(errs, err)
		}
	}
	return e, errors.Join(errs...)
}

// Setting is one variable a writer sets.
type Setting struct {
	Name string
	// Value is the variable's value. A pod template takes it from Source
	// instead when Source is not FromValue (the Env a template is rendered
	// from does not know the pod's name, and never holds the token).
	Value  string
	Source Source
}

// Render lists the variables that tell an encoder e (the writers' side), in
// the order of Vars: every variable whose Source is not FromValue, and
// every other one that has a value (an empty value means its default).
func (e Env) Render() []Setting {
	out := make([]Setting, 0, len(Vars))
	for _, v := range Vars {
		val := v.get(e)
		if v.Source == FromValue && val == "" {
			continue
		}
		out = append(out, Setting{Name: v.Name, Value: val, Source: v.Source})
	}
	return out
}

// Environ is Render as NAME=value pairs for a process (os/exec's Cmd.Env),
// every value taken from e.
func (e Env) Environ() []string {
	settings := e.Render()
	out := make([]string, len(settings))
	for i, s := range settings {
		out[i] = s.Name + "=" + s.Value
	}
	return out
}
