package encoder

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/mpegflow/mpegflow/internal/netguard"
)

// Config is the pod's environment (see FromEnv for the variable names).
type Config struct {
	Coordinator string        // host:port of the coordinator (gRPC)
	Pool        string        // the pool this pod serves
	Lane        string        // live or backfill
	WorkerToken string        // the pool's worker token
	Pod, Node   string        // identity reported to the coordinator
	Accelerator string        // cpu or nvidia
	ScratchDir  string        // where inputs and outputs live while encoding
	ClaimWait   time.Duration // long-poll for work this long, then exit 0
	FFmpeg      string        // ffmpeg binary
	FFprobe     string        // ffprobe binary
	// MaxInputBytes bounds a download (default 200 GiB).
	MaxInputBytes int64
	// UploadConcurrency is how many PUTs run at once (default 4).
	UploadConcurrency int
	// StopGrace is how long SIGTERM handling may take before exit (default 8 s).
	StopGrace time.Duration
	// HTTP talks to MpegFlow's own storage through presigned URLs (inputs
	// the coordinator presigned, uploads).
	HTTP *http.Client
	// Guard is the SSRF guard for customer input URLs (default: public
	// https only): every connection and redirect of InputHTTP passes it.
	Guard *netguard.Guard
	// InputHTTP fetches customer input URLs (default: Guard's client,
	// following up to 5 redirects, each checked again).
	InputHTTP *http.Client
}

// EnvVars documents the variables FromEnv reads.
var EnvVars = []struct{ Name, Default, Meaning string }{
	{"MPEGFLOW_COORDINATOR", "", "coordinator address host:port (required)"},
	{"MPEGFLOW_POOL", "default", "pool id"},
	{"MPEGFLOW_LANE", "live", "live or backfill"},
	{"MPEGFLOW_WORKER_TOKEN", "", "the pool's worker token (required)"},
	{"MPEGFLOW_POD_NAME", "hostname", "worker id reported to the coordinator"},
	{"MPEGFLOW_NODE_NAME", "", "node name reported to the coordinator"},
	{"MPEGFLOW_ACCELERATOR", "cpu", "cpu or nvidia (try NVENC, fall back to CPU encoders)"},
	{"MPEGFLOW_SCRATCH_DIR", "os temp dir", "scratch directory; the readiness file 'claimed' is written here"},
	{"MPEGFLOW_CLAIM_WAIT", "20s", "how long to wait for a job before exiting 0"},
	{"MPEGFLOW_FFMPEG", "ffmpeg", "ffmpeg binary"},
	{"MPEGFLOW_FFPROBE", "ffprobe", "ffprobe binary"},
	{"MPEGFLOW_ALLOW_HTTP", "false", "fetch plain http:// customer inputs (development only)"},
	{"MPEGFLOW_EGRESS_ALLOW", "", "CIDRs customer inputs may come from although not public (tests and development only)"},
}

// FromEnv reads the pod's configuration.
func FromEnv(getenv func(string) string) (Config, error) {
	host, _ := os.Hostname()
	c := Config{
		Coordinator: getenv("MPEGFLOW_COORDINATOR"),
		Pool:        cmp.Or(getenv("MPEGFLOW_POOL"), "default"),
		Lane:        cmp.Or(getenv("MPEGFLOW_LANE"), "live"),
		WorkerToken: getenv("MPEGFLOW_WORKER_TOKEN"),
		Pod:         cmp.Or(getenv("MPEGFLOW_POD_NAME"), host),
		Node:        getenv("MPEGFLOW_NODE_NAME"),
		Accelerator: cmp.Or(getenv("MPEGFLOW_ACCELERATOR"), "cpu"),
		ScratchDir:  cmp.Or(getenv("MPEGFLOW_SCRATCH_DIR"), os.TempDir()),
		FFmpeg:      cmp.Or(getenv("MPEGFLOW_FFMPEG"), "ffmpeg"),
		FFprobe:     cmp.Or(getenv("MPEGFLOW_FFPROBE"), "ffprobe"),
	}
	var errs []error
	if c.Coordinator == "" {
		errs = append(errs, errors.New("MPEGFLOW_COORDINATOR is required (host:port of the coordinator)"))
	}
	if c.WorkerToken == "" {
		errs = append(errs, errors.New("MPEGFLOW_WORKER_TOKEN is required"))
	}
	if c.Lane != "live" && c.Lane != "backfill" {
		errs = append(errs, fmt.Errorf("MPEGFLOW_LANE: %q is not live or backfill", c.Lane))
	}
	if c.Accelerator != "cpu" && c.Accelerator != "nvidia" {
		errs = append(errs, fmt.Errorf("MPEGFLOW_ACCELERATOR: %q is not cpu or nvidia", c.Accelerator))
	}
	wait := cmp.Or(getenv("MPEGFLOW_CLAIM_WAIT"), "20s")
	d, err := time.ParseDuration(wait)
	if err != nil || d < 0 || d > 30*time.Second {
		errs = append(errs, fmt.Errorf("MPEGFLOW_CLAIM_WAIT: want a duration from 0s to 30s, got %q", wait))
	}
	c.ClaimWait = d
	allowHTTP := false
	if v := getenv("MPEGFLOW_ALLOW_HTTP"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("MPEGFLOW_ALLOW_HTTP: want true or false, got %q", v))
		}
		allowHTTP = b
	}
	allow, err := netguard.ParseAllow(getenv("MPEGFLOW_EGRESS_ALLOW"))
	if err != nil {
		errs = append(errs, fmt.Errorf("MPEGFLOW_EGRESS_ALLOW: %w", err))
	}
	c.Guard = netguard.New(netguard.Config{AllowHTTP: allowHTTP, Allow: allow})
	return c, errors.Join(errs...)
}

func (c *Config) defaults() {
	c.MaxInputBytes = cmp.Or(c.MaxInputBytes, 200<<30)
	c.UploadConcurrency = cmp.Or(c.UploadConcurrency, 4)
	c.StopGrace = cmp.Or(c.StopGrace, 8*time.Second)
	if c.HTTP == nil {
		c.HTTP = &http.Client{Timeout: 0}
	}
	if c.Guard == nil {
		c.Guard = netguard.New(netguard.Config{})
	}
	if c.InputHTTP == nil {
		c.InputHTTP = c.Guard.Client(netguard.ClientConfig{MaxRedirects: 5})
	}
}
