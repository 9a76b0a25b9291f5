package encoder

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/mpegflow/mpegflow/api/encodepod"
	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/netguard"
)

// Config is how the encoder runs: the pod's environment (FromEnv reads it,
// api/encodepod lists it) plus tunables and clients.
type Config struct {
	Coordinator string        // host:port of the coordinator (gRPC)
	Pool        string        // the pool this pod serves
	Lane        string        // live or backfill
	WorkerToken string        // the pool's worker token
	Pod, Node   string        // identity reported to the coordinator
	Accelerator string        // cpu or nvidia
	ScratchDir  string        // where inputs and outputs live while encoding
	ClaimWait   time.Duration // long-poll for work this long, then exit 0
	// IdleWait, when longer than ClaimWait, keeps a pod of a pre-warmed
	// pool waiting that long, one long poll after another (encodepod).
	IdleWait time.Duration
	// JobsPerPod is how many jobs the pod runs, one after another, before
	// it exits (encodepod; the pool's jobs_per_pod). Below 1 means 1, and
	// so does any value on the shared pool.
	JobsPerPod int
	FFmpeg     string // ffmpeg binary
	FFprobe    string // ffprobe binary
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

// FromEnv reads the pod's configuration: the variables of encodepod.Vars,
// which the operator and the local executor render from the same table.
func FromEnv(getenv func(string) string) (Config, error) {
	env, err := encodepod.Parse(getenv)
	c := Config{
		Coordinator: env.Coordinator,
		Pool:        env.Pool,
		Lane:        env.Lane,
		WorkerToken: env.WorkerToken,
		Pod:         env.Pod,
		Node:        env.Node,
		Accelerator: env.Accelerator,
		ScratchDir:  env.ScratchDir,
		ClaimWait:   env.ClaimWait,
		IdleWait:    env.IdleWait,
		JobsPerPod:  env.JobsPerPod,
		FFmpeg:      env.FFmpeg,
		FFprobe:     env.FFprobe,
	}
	allow, aerr := netguard.ParseAllow(env.EgressAllow)
	if aerr != nil {
		aerr = fmt.Errorf("%s: %w", encodepod.EnvEgressAllow, aerr)
	}
	c.Guard = netguard.New(netguard.Config{AllowHTTP: env.AllowHTTP, Allow: allow})
	return c, errors.Join(err, aerr)
}

func (c *Config) defaults() {
	c.MaxInputBytes = cmp.Or(c.MaxInputBytes, 200<<30)
	c.UploadConcurrency = cmp.Or(c.UploadConcurrency, 4)
	c.StopGrace = cmp.Or(c.StopGrace, 8*time.Second)
	c.JobsPerPod = max(c.JobsPerPod, 1)
	if c.Pool == apiv1.DefaultPoolID {
		c.JobsPerPod = 1 // the shared pool's pods serve every organization: never a second job, whatever the pod is told
	}
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
