package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/contentkey"
	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/netguard"
	"github.com/mpegflow/mpegflow/internal/netguard/netguardtest"
	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/testenv"
	"github.com/mpegflow/mpegflow/operator"
)

// fixture is a real API on a fresh database, a private Redis prefix and its
// own S3 bucket, with org A holding one member of every role and org B an
// owner. The server's clock (invitations) is a fake the test moves.
type fixture struct {
	t       *testing.T
	srv     *Server
	store   *store.Store
	db      *pgxpool.Pool
	rdb     *redis.Client
	queue   *queue.Queue
	objects *objstore.Store
	orgA    store.Organization
	orgB    store.Organization
	keys    map[auth.Role]string // org A
	keyB    string               // org B's owner
	clock   *clocktesting.FakePassiveClock
}

// runHub runs hub until the test ends, as serve does beside each API: it
// listens on Redis while a WebSocket client is connected.
func runHub(t *testing.T, hub *events.Hub) *events.Hub {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = hub.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return hub
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db := testenv.Postgres(t)
	st := store.New(db)
	rdb, prefix := testenv.Redis(t)
	objects, err := objstore.New(t.Context(), testenv.S3(t))
	require.NoError(t, err)
	q := queue.New(rdb, queue.NewKeys(prefix))
	hub := runHub(t, events.NewHub(rdb, q.Keys().Events(), 64, slog.New(slog.DiscardHandler)))
	planner, err := operator.NewPlanner(testPlanConfig())
	require.NoError(t, err)
	clk := clocktesting.NewFakePassiveClock(time.Now().Truncate(time.Second)) // Postgres keeps microseconds
	sealer, err := contentkey.NewSealer(fixtureSecret)
	require.NoError(t, err)
	uploads, err := objects.ConnectSource(t.Context())
	require.NoError(t, err)
	srv, err := New(Config{BodyLimit: 64 << 10, Hub: hub, Guard: testGuard(), Planner: planner, Clock: clk, Uploads: testUploads, ContentKeys: sealer, UploadSource: uploads},
		st, q, objects, events.NewBus(q, time.Now), slog.New(slog.DiscardHandler))
	require.NoError(t, err)

	f := &fixture{t: t, srv: srv, store: st, db: db, rdb: rdb, queue: q, objects: objects, keys: map[auth.Role]string{}, clock: clk}
	a, err := st.BootstrapOrg(ctx, "Org A", "owner@a.example", auth.Owner)
	require.NoError(t, err)
	f.orgA, f.keys[auth.Owner] = a.Org, a.Key
	for _, role := range []auth.Role{auth.Viewer, auth.Editor, auth.Admin, auth.SuperAdmin} {
		m, err := st.AddMember(ctx, a.Org.ID, string(role)+"@a.example", "", role)
		require.NoError(t, err)
		key, _, err := st.CreateKey(ctx, a.Org.ID, m.UserID, "test", nil)
		require.NoError(t, err)
		f.keys[role] = key
	}
	b, err := st.BootstrapOrg(ctx, "Org B", "owner@b.example", auth.Owner)
	require.NoError(t, err)
	// Every plan may have any pool, as a deployment that sells no plans
	// would configure it; the policy tests PUT their own policy.
	_, err = st.SeedPlatformPolicy(ctx, apiv1.UnrestrictedPlatformPolicy())
	require.NoError(t, err)
	f.orgB, f.keyB = b.Org, b.Key
	return f
}

// fixtureSecret is the server secret content keys are sealed under.
var fixtureSecret = []byte("fixture-server-secret-0123456789abcdef")

// testUploads: assets above 6 MiB are uploaded in parts of 5 MiB (S3's
// least), so tests send multipart uploads of a few parts.
var testUploads = UploadConfig{MultipartThreshold: 6 << 20, PartSize: 5 << 20}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.Body, v), "body: %s", r.Body)
}

func (r response) problem(t *testing.T) Problem {
	t.Helper()
	require.Equal(t, "application/problem+json", r.Header.Get("Content-Type"), "body: %s", r.Body)
	var p Problem
	r.json(t, &p)
	return p
}

// fields lists the field paths a validation problem names.
func (r response) fields(t *testing.T) []string {
	t.Helper()
	p := r.problem(t)
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

// raw sends a request with a raw body and headers through the real app.
func (f *fixture) raw(t *testing.T, method, path, key string, body []byte, header map[string]string) response {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := f.srv.App().Test(req, -1)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	checkAgainstOpenAPI(t, req, body, resp.StatusCode, resp.Header, b)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// do sends v as JSON (nil = no body).
func (f *fixture) do(t *testing.T, method, path, key string, v any) response {
	t.Helper()
	var body []byte
	if v != nil {
		var err error
		body, err = json.Marshal(v)
		require.NoError(t, err)
	}
	return f.raw(t, method, path, key, body, nil)
}

// mustDo is do that requires a status.
func (f *fixture) mustDo(t *testing.T, status int, method, path, key string, v any, out any) {
	t.Helper()
	r := f.do(t, method, path, key, v)
	require.Equal(t, status, r.Status, "%s %s: %s", method, path, r.Body)
	if out != nil {
		r.json(t, out)
	}
}

// submitJob creates a job in org A through the API.
func (f *fixture) submitJob(t *testing.T, key string, body map[string]any) apiv1.Job {
	t.Helper()
	var j apiv1.Job
	f.mustDo(t, http.StatusCreated, "POST", "/v1/jobs", key, body, &j)
	return j
}

func urlJob() map[string]any {
	return map[string]any{"input": map[string]any{"url": "https://media.example.com/in.mp4"}, "workflow": "mp4-720p"}
}

func jsonDecode(resp *http.Response, v any) error {
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// testGuard is the SSRF guard of API tests: names resolve without DNS, to a
// public address unless the test table says otherwise.
func testGuard() *netguard.Guard {
	r := netguardtest.NewPublic().
		Set("loopback.example", "127.0.0.1").
		Set("metadata.example", "169.254.169.254").
		Set("private.example", "10.0.0.5", "93.184.215.14").
		Set("v6.example", "::1")
	return netguard.New(netguard.Config{Resolver: r})
}

// serve runs the fixture's server on a loopback port until the test ends
// and returns its address, for requests app.Test cannot carry byte for byte.
func (f *fixture) serve(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return ln.Addr().String()
}
