// Package apiservertest runs a real MpegFlow API for tests of API clients (the
// client package and the CLI): a fresh Postgres database, a private Redis
// prefix with a live event hub, and its own bucket on the test S3 server,
// served on a loopback port. It also plays the encoder's part (RunJob,
// Complete, Fail), moving jobs through the store and publishing the events
// the coordinator would, so a client sees what it sees in production.
package apiservertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/apiserver"
	"github.com/mpegflow/mpegflow/backfill"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/netguard"
	"github.com/mpegflow/mpegflow/internal/netguard/netguardtest"
	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

// Options shape the server.
type Options struct {
	// NoWebSocket serves without an event hub, so GET /ws answers 503 and
	// clients must poll.
	NoWebSocket bool
	// Uploads sets the multipart threshold and part size (default: the
	// server's, 100 MiB and 16 MiB).
	Uploads apiserver.UploadConfig
}

// Server is a running API with one organization and keys of two roles.
type Server struct {
	// URL is the base URL (http://127.0.0.1:port).
	URL string
	// OwnerKey may do everything in the organization; ViewerKey only read.
	OwnerKey, ViewerKey string
	OrgID               uuid.UUID
	Store               *store.Store
	Objects             *objstore.Store
	Hub                 *events.Hub // nil with NoWebSocket
	Bus                 *events.Bus
}

// New starts a server that stops when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	ctx := context.Background()
	st := store.New(testenv.Postgres(t))
	rdb, prefix := testenv.Redis(t)
	objects, err := objstore.New(ctx, testenv.S3(t))
	if err != nil {
		t.Fatalf("objstore: %v", err)
	}
	q := queue.New(rdb, queue.NewKeys(prefix))
	log := slog.New(slog.DiscardHandler)
	bus := events.NewBus(q, time.Now)
	s := &Server{Store: st, Objects: objects, Bus: bus}
	// Test inputs are presigned URLs of the local S3 server (127.0.0.1) and
	// names that resolve, without DNS, to a public address.
	cfg := apiserver.Config{Uploads: opts.Uploads, Guard: netguard.New(netguard.Config{AllowHTTP: true, Allow: netguardtest.LoopbackAllowed(), Resolver: netguardtest.NewPublic()})}
	if !opts.NoWebSocket {
		s.Hub = events.NewHub(rdb, q.Keys().Events(), 256, log)
		cfg.Hub = s.Hub
	}
	// Batches expand at once (kicked on submission), as in production.
	expander, err := backfill.NewExpander(backfill.Config{Storage: objects.Storage(), Period: 200 * time.Millisecond, Guard: cfg.Guard}, st, q, objects, log)
	if err != nil {
		t.Fatalf("batch expander: %v", err)
	}
	cfg.Batches = expander
	srv, err := apiserver.New(cfg, st, q, objects, bus, log)
	if err != nil {
		t.Fatalf("apiserver: %v", err)
	}
	b, err := st.BootstrapOrg(ctx, "Client Test", "owner@client.example", auth.Owner)
	if err != nil {
		t.Fatalf("bootstrap org: %v", err)
	}
	s.OrgID, s.OwnerKey = b.Org.ID, b.Key
	// Any plan may have any pool (client tests are not about the policy).
	if _, err := st.SeedPlatformPolicy(ctx, apiv1.UnrestrictedPlatformPolicy()); err != nil {
		t.Fatalf("seed platform policy: %v", err)
	}
	m, err := st.AddMember(ctx, b.Org.ID, "viewer@client.example", "", auth.Viewer)
	if err != nil {
		t.Fatalf("add viewer: %v", err)
	}
	if s.ViewerKey, _, err = st.CreateKey(ctx, b.Org.ID, m.UserID, "test", nil); err != nil {
		t.Fatalf("viewer key: %v", err)
	}

	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s.URL = "http://" + ln.Addr().String()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, 3)
	go func() { _ = srv.Serve(runCtx, ln); done <- struct{}{} }()
	go func() { _ = expander.Run(runCtx); done <- struct{}{} }()
	running := 2
	if s.Hub != nil {
		running++
		go func() { _ = s.Hub.Run(runCtx); done <- struct{}{} }()
	}
	t.Cleanup(func() {
		cancel()
		for range running {
			<-done
		}
	})
	return s
}

// ClosedURL is a loopback URL where nothing listens.
func ClosedURL(t testing.TB) string {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	u := "http://" + ln.Addr().String()
	_ = ln.Close()
	return u
}

// Job is a job the test holds a claim on, as an encoder would.
type Job struct {
	s     *Server
	t     testing.TB
	ID    uuid.UUID
	pool  string
	token []byte
}

// Claim starts a queued job (job.started), as an encoder's claim does; its
// event is published before Claim returns (the coordinator posts its own
// a few milliseconds later).
func (s *Server) Claim(t testing.TB, id string) *Job {
	t.Helper()
	jid := uuid.MustParse(id)
	j, err := s.Store.GetJob(context.Background(), s.OrgID, jid)
	if err != nil {
		t.Fatalf("get job %s: %v", id, err)
	}
	tok := sha256.Sum256([]byte("token-" + id))
	now := time.Now()
	cj, err := s.Store.ClaimJob(context.Background(), jid, j.PoolID, j.Lane, "worker-"+id[:8], tok[:], now, now.Add(time.Minute))
	if err != nil {
		t.Fatalf("claim job %s: %v", id, err)
	}
	s.emit(t, cj.Job, "job.started", map[string]any{"worker_id": "worker-" + id[:8], "attempt": cj.Attempts})
	return &Job{s: s, t: t, ID: jid, pool: j.PoolID, token: tok[:]}
}

// Progress records a heartbeat with progress p (job.progress).
func (j *Job) Progress(p float64) {
	j.t.Helper()
	now := time.Now()
	job, _, err := j.s.Store.Heartbeat(context.Background(), j.ID, j.pool, j.token, p, now, now.Add(time.Minute))
	if err != nil {
		j.t.Fatalf("heartbeat job %s: %v", j.ID, err)
	}
	j.s.emit(j.t, job, "job.progress", map[string]any{"progress": p})
}

// Complete uploads outputs (name → bytes) to storage through presigned
// PUTs and completes the job with them (job.completed). Names are stored
// as given, unchecked, so tests can offer hostile ones.
func (j *Job) Complete(outputs map[string][]byte) {
	j.t.Helper()
	ctx := context.Background()
	type record struct {
		Name        string `json:"name"`
		Kind        string `json:"kind"`
		SizeBytes   int64  `json:"size_bytes"`
		ContentType string `json:"content_type"`
		Key         string `json:"key"`
	}
	var recs []record
	for name, body := range outputs {
		key := "orgs/" + j.s.OrgID.String() + "/jobs/" + j.ID.String() + "/outputs/" + uuid.NewString()
		put, err := j.s.Objects.PresignPut(ctx, key, "application/octet-stream")
		if err != nil {
			j.t.Fatalf("presign output: %v", err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, put.URL, bytes.NewReader(body))
		if err != nil {
			j.t.Fatalf("upload output: %v", err)
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			j.t.Fatalf("upload output: %v", err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			j.t.Fatalf("upload output %s: %s", name, resp.Status)
		}
		recs = append(recs, record{Name: name, Kind: "file", SizeBytes: int64(len(body)), ContentType: "application/octet-stream", Key: key})
	}
	doc := json.RawMessage(`[]`)
	if recs != nil {
		b, err := json.Marshal(recs)
		if err != nil {
			j.t.Fatalf("outputs document of job %s: %v", j.ID, err)
		}
		doc = b
	}
	job, err := j.s.Store.CompleteJob(ctx, j.ID, j.pool, j.token, doc, store.Usage{EncodeSeconds: 1}, time.Now())
	if err != nil {
		j.t.Fatalf("complete job %s: %v", j.ID, err)
	}
	j.s.emit(j.t, job, "job.completed", map[string]any{"outputs": len(recs)})
}

// Fail fails the job for good with msg (job.failed).
func (j *Job) Fail(msg string) {
	j.t.Helper()
	job, _, err := j.s.Store.FailJob(context.Background(), j.ID, j.pool, j.token, msg, false, false,
		store.FailPolicy{Now: time.Now(), Backoff: func(int) time.Duration { return time.Second }})
	if err != nil {
		j.t.Fatalf("fail job %s: %v", j.ID, err)
	}
	j.s.emit(j.t, job, "job.failed", map[string]any{"error": msg})
}

func (s *Server) emit(t testing.TB, j store.Job, typ string, data map[string]any) {
	t.Helper()
	org := j.OrgID
	id := j.ID
	if err := s.Bus.Emit(context.Background(), events.Event{Type: typ, OrgID: &org, JobID: &id, PoolID: j.PoolID, Data: data}); err != nil {
		t.Fatalf("emit %s: %v", typ, err)
	}
}

// WaitSubscribers blocks until the event hub has n WebSocket subscribers,
// so a test publishes only once a watcher listens.
func (s *Server) WaitSubscribers(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.Hub.Subscribers() != n {
		if time.Now().After(deadline) {
			t.Fatalf("event hub has %d subscribers, want %d", s.Hub.Subscribers(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
