package dispatcher

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/netguard"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/webhook"
)

// loopbackGuard lets deliveries reach receivers on 127.0.0.1 (tests only).
func loopbackGuard() *netguard.Guard {
	return netguard.New(netguard.Config{AllowHTTP: true, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
}

// receiver is a real HTTP endpoint that records what it was sent.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []capture
	status   int // answer; 0 = let the webhook.Handler decide
	handler  http.Handler
}

type capture struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, h http.Handler) *receiver {
	t.Helper()
	r := &receiver{handler: h}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.requests = append(r.requests, capture{header: req.Header.Clone(), body: body})
		status := r.status
		r.mu.Unlock()
		if status != 0 {
			w.WriteHeader(status)
			fmt.Fprint(w, "receiver is down")
			return
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		r.handler.ServeHTTP(w, req)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) setStatus(code int) {
	r.mu.Lock()
	r.status = code
	r.mu.Unlock()
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.requests)
}

func (r *receiver) get(i int) capture {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[i]
}

func (e *env) webhook(url string, events ...string) store.Webhook {
	e.t.Helper()
	w, err := e.store.CreateWebhook(context.Background(), e.org.ID, url, "test", events)
	require.NoError(e.t, err)
	return w
}

func (e *env) deliveries(w store.Webhook) []store.WebhookDelivery {
	e.t.Helper()
	ds, err := e.store.ListDeliveries(context.Background(), e.org.ID, w.ID, "", store.Page{Limit: 200})
	require.NoError(e.t, err)
	return ds
}

func (e *env) reloadWebhook(w store.Webhook) store.Webhook {
	e.t.Helper()
	got, err := e.store.GetWebhook(context.Background(), e.org.ID, w.ID)
	require.NoError(e.t, err)
	return got
}

// TestWebhookSignedDeliveries: a real receiver built on the exported
// webhook.Handler gets job.queued, job.started and job.failed in order,
// each verified; the log shows status codes and latency. The same request
// replayed after the window, or altered, is rejected; replayed within it, it
// is acknowledged but not handled twice.
func TestWebhookSignedDeliveries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	fc := newFakeClock()
	in := e.start(Config{Clock: fc}).withServices(ServicesConfig{Webhooks: WebhookConfig{Guard: loopbackGuard()}})

	var mu sync.Mutex
	var got []webhook.Event
	h := &webhook.Handler{Now: fc.Now, OnEvent: func(_ context.Context, ev webhook.Event) error {
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
		return nil
	}}
	rcv := newReceiver(t, h)
	hook := e.webhook(rcv.URL+"/hooks/mpegflow", "job.queued", "job.started", "job.failed")
	h.Secret = hook.Secret
	other := e.webhook(rcv.URL+"/other", "job.completed") // subscribed to nothing that happens

	w := e.worker(in.addr, store.DefaultPoolID)
	id := e.submit(store.DefaultPoolID, 1)[0]
	_, err := w.fail(t.Context(), w.mustClaim(t, "pod-1"), "input is not a video", false)
	require.NoError(t, err)

	fc.Step(2 * time.Second) // past the rows' database timestamps
	n, err := in.services.DeliverWebhooks(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, n)

	mu.Lock()
	require.Len(t, got, 3)
	types := []string{got[0].Type, got[1].Type, got[2].Type}
	var job struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	require.NoError(t, json.Unmarshal(got[2].Job, &job))
	mu.Unlock()
	assert.Equal(t, []string{"job.queued", "job.started", "job.failed"}, types, "in event order")
	assert.Equal(t, "failed", job.Status, "the job as it stood after the event")
	assert.Equal(t, "input is not a video", job.Error)
	assert.Equal(t, id.String(), got[0].JobID)

	ds := e.deliveries(hook)
	require.Len(t, ds, 3)
	for _, d := range ds {
		assert.Equal(t, store.DeliveryDelivered, d.Status)
		assert.Equal(t, 1, d.Attempts)
		require.NotNil(t, d.LastStatusCode)
		assert.Equal(t, http.StatusOK, *d.LastStatusCode)
		require.NotNil(t, d.LatencyMS)
		t.Logf("%s delivered in %d ms", d.EventType, *d.LatencyMS)
	}
	assert.Empty(t, e.deliveries(other))
	assert.Equal(t, 3.0, mustMetric(t, in.metrics.Registry, "mpegflow_webhook_deliveries_total", map[string]string{"status": "delivered"}))

	first := rcv.get(0)
	assert.Equal(t, ds[2].ID.String(), first.header.Get(webhook.DeliveryHeader), "oldest delivery went first")
	replay := func(body []byte) int {
		req, err := http.NewRequest(http.MethodPost, rcv.URL, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set(webhook.SignatureHeader, first.header.Get(webhook.SignatureHeader))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusOK, replay(first.body), "a replay within the window is acknowledged")
	altered := bytes.Replace(first.body, []byte("job.queued"), []byte("job.completed"), 1)
	assert.Equal(t, http.StatusUnauthorized, replay(altered), "an altered body is rejected")
	fc.Step(webhook.DefaultTolerance + time.Second)
	assert.Equal(t, http.StatusUnauthorized, replay(first.body), "a replay after the window is rejected")
	mu.Lock()
	assert.Len(t, got, 3, "replays never reached the application")
	mu.Unlock()
}

// TestWebhookBackoffSchedule: a receiver that always answers 500 sees the
// attempts at base·2^(n−1) (capped) under an injected clock, nothing a
// second early, until the retry window (24 h) ends and the delivery fails.
func TestWebhookBackoffSchedule(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	fc := newFakeClock()
	cfg := WebhookConfig{Guard: loopbackGuard(), Jitter: fixedJitter(0.5), CircuitThreshold: 100}
	in := e.start(Config{Clock: fc}).withServices(ServicesConfig{Webhooks: cfg})
	rcv := newReceiver(t, nil)
	rcv.setStatus(http.StatusInternalServerError)
	hook := e.webhook(rcv.URL, "job.queued")
	e.submit(store.DefaultPoolID, 1)
	fc.Step(2 * time.Second)
	start := fc.Now()

	var schedule []time.Duration
	for attempt := 1; ; attempt++ {
		n, err := in.services.DeliverWebhooks(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n, "attempt %d", attempt)
		require.Equal(t, attempt, rcv.count())
		d := e.deliveries(hook)[0]
		require.NotNil(t, d.LastError)
		assert.Contains(t, *d.LastError, "answered 500 Internal Server Error: receiver is down")
		if d.Status == store.DeliveryFailed {
			assert.Contains(t, *d.LastError, fmt.Sprintf("gave up after %d attempts", attempt))
			break
		}
		require.Equal(t, store.DeliveryPending, d.Status)
		require.NotNil(t, d.NextAttemptAt)
		wait := d.NextAttemptAt.Sub(fc.Now())
		schedule = append(schedule, wait)
		fc.Step(wait - time.Second)
		n, err = in.services.DeliverWebhooks(ctx)
		require.NoError(t, err)
		require.Zero(t, n, "attempt %d: a second early, nothing is sent", attempt+1)
		fc.Step(time.Second)
	}
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute,
		32 * time.Minute, 64 * time.Minute, 128 * time.Minute, 4 * time.Hour, 4 * time.Hour, 4 * time.Hour, 4 * time.Hour}
	assert.Equal(t, want, schedule)
	total := fc.Now().Sub(start)
	t.Logf("%d attempts over %s, waits %v", rcv.count(), total, schedule)
	assert.Equal(t, 14, rcv.count())
	assert.Less(t, total, 24*time.Hour)
	assert.Greater(t, total, 20*time.Hour, "about a day")
	assert.Equal(t, 13.0, mustMetric(t, in.metrics.Registry, "mpegflow_webhook_deliveries_total", map[string]string{"status": "retrying"}))
	assert.Equal(t, 1.0, mustMetric(t, in.metrics.Registry, "mpegflow_webhook_deliveries_total", map[string]string{"status": "failed"}))
	assert.Equal(t, 14, e.reloadWebhook(hook).ConsecutiveFailures)
}

// TestWebhookCircuitBreaker: with three events queued for a dead receiver,
// each round makes one attempt (the rest wait, no burst); the third failure
// in a row disables the webhook and the gauge shows 3. While open nothing is
// sent. Enabling it through the API's store call closes the circuit and the
// backlog is delivered in order.
func TestWebhookCircuitBreaker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	fc := newFakeClock()
	in := e.start(Config{Clock: fc}).withServices(ServicesConfig{Webhooks: WebhookConfig{Guard: loopbackGuard(), CircuitThreshold: 3, Jitter: fixedJitter(0.5)}})
	in.metrics.RegisterWebhookCircuits(e.store, slog.New(slog.DiscardHandler))
	var mu sync.Mutex
	var got []string
	h := &webhook.Handler{Now: fc.Now, OnEvent: func(_ context.Context, ev webhook.Event) error {
		mu.Lock()
		got = append(got, ev.JobID)
		mu.Unlock()
		return nil
	}}
	rcv := newReceiver(t, h)
	rcv.setStatus(http.StatusServiceUnavailable)
	hook := e.webhook(rcv.URL, "job.queued")
	h.Secret = hook.Secret
	ids := e.submit(store.DefaultPoolID, 3)
	fc.Step(2 * time.Second)
	gauge := map[string]string{"webhook_id": hook.ID.String()}

	for round := 1; round <= 3; round++ {
		n, err := in.services.DeliverWebhooks(ctx)
		require.NoError(t, err)
		assert.Equal(t, 1, n, "round %d: one attempt, the others wait", round)
		assert.Equal(t, round, rcv.count())
		assert.Equal(t, float64(round), mustMetric(t, in.metrics.Registry, "mpegflow_webhook_consecutive_failures", gauge))
		fc.Step(5 * time.Second)
	}
	w := e.reloadWebhook(hook)
	assert.False(t, w.Enabled, "the circuit is open")
	assert.Equal(t, 3, w.ConsecutiveFailures)
	require.NotNil(t, w.DisabledReason)
	assert.Contains(t, *w.DisabledReason, "3 deliveries failed in a row")
	require.NotNil(t, w.DisabledAt)

	fc.Step(time.Hour)
	n, err := in.services.DeliverWebhooks(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "nothing is sent while the circuit is open")
	assert.Equal(t, 3, rcv.count())
	for _, d := range e.deliveries(hook) {
		assert.Equal(t, store.DeliveryPending, d.Status, "deliveries wait, they are not lost")
	}

	rcv.setStatus(0)
	enable := true
	_, err = e.store.UpdateWebhook(ctx, e.org.ID, hook.ID, store.WebhookPatch{Enabled: &enable})
	require.NoError(t, err)
	_, found := metricValue(t, in.metrics.Registry, "mpegflow_webhook_consecutive_failures", gauge)
	assert.False(t, found, "closed circuit: no failures to report")
	n, err = in.services.DeliverWebhooks(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	mu.Lock()
	assert.Equal(t, []string{ids[0].String(), ids[1].String(), ids[2].String()}, got, "backlog delivered in event order")
	mu.Unlock()
	assert.Zero(t, e.reloadWebhook(hook).ConsecutiveFailures)
}

// TestWebhookRefusedAtDelivery: the webhook's host name resolves to
// 127.0.0.1 when the executor connects; the guard refuses the connection,
// the receiver (really listening there) sees nothing, and the log says why.
func TestWebhookRefusedAtDelivery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	fc := newFakeClock()
	strict := netguard.New(netguard.Config{AllowHTTP: true}) // no allowlist
	in := e.start(Config{Clock: fc}).withServices(ServicesConfig{Webhooks: WebhookConfig{Guard: strict}})
	rcv := newReceiver(t, http.NotFoundHandler())
	_, p, err := net.SplitHostPort(rcv.Listener.Addr().String())
	require.NoError(t, err)
	hook := e.webhook("http://localhost:"+p+"/hook", "job.queued")
	e.submit(store.DefaultPoolID, 1)
	fc.Step(2 * time.Second)
	n, err := in.services.DeliverWebhooks(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Zero(t, rcv.count(), "the refused connection never happened")
	d := e.deliveries(hook)[0]
	assert.Equal(t, store.DeliveryPending, d.Status, "retried later like any failure")
	require.NotNil(t, d.LastError)
	assert.Contains(t, *d.LastError, "refused:")
	assert.Contains(t, *d.LastError, "is a loopback address")
	assert.Nil(t, d.LastStatusCode)
}

// clusterDNSResolver fails every lookup as Go's resolver does inside a pod:
// the error's text names the cluster's DNS service.
type clusterDNSResolver struct{}

func (clusterDNSResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	return nil, &net.DNSError{Err: "no such host", Name: host, Server: "10.96.0.10:53", IsNotFound: true}
}

// TestWebhookDNSFailureHidesTheResolver: a webhook whose host does not
// resolve fails its delivery; the delivery log, which the webhook's owner
// reads, says the host was not found and does not name the cluster's DNS
// server.
func TestWebhookDNSFailureHidesTheResolver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	fc := newFakeClock()
	guard := netguard.New(netguard.Config{AllowHTTP: true, Resolver: clusterDNSResolver{}})
	in := e.start(Config{Clock: fc}).withServices(ServicesConfig{Webhooks: WebhookConfig{Guard: guard}})
	hook := e.webhook("https://hooks.gone.example/hook", "job.queued")
	e.submit(store.DefaultPoolID, 1)
	fc.Step(2 * time.Second)
	n, err := in.services.DeliverWebhooks(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	d := e.deliveries(hook)[0]
	require.NotNil(t, d.LastError)
	assert.Contains(t, *d.LastError, "host hooks.gone.example not found")
	assert.NotContains(t, *d.LastError, "10.96.0.10", "the delivery log names the cluster's DNS server")
}

// TestWebhookTwoReplicasDeliverOnce: two coordinator replicas run their
// executors at the same time, round after round, against one database; a
// slow receiver keeps their rounds overlapping. Every event arrives exactly
// once.
func TestWebhookTwoReplicasDeliverOnce(t *testing.T) {
	t.Parallel()
	const jobs = 40
	e := newEnv(t)
	var mu sync.Mutex
	seen := map[string]int{} // path + event id
	handlers := map[string]*webhook.Handler{}
	for _, path := range []string{"/1", "/2"} {
		handlers[path] = &webhook.Handler{OnEvent: func(_ context.Context, ev webhook.Event) error {
			mu.Lock()
			seen[path+" "+ev.ID]++
			mu.Unlock()
			return nil
		}}
	}
	rcv := newReceiver(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond) // keeps both replicas' rounds overlapping
		handlers[r.URL.Path].ServeHTTP(w, r)
	}))
	// Two webhooks: deliveries of several webhooks go out concurrently
	// within a round, each webhook's one after another.
	hook := e.webhook(rcv.URL+"/1", "job.queued")
	hook2 := e.webhook(rcv.URL+"/2", "job.queued")
	handlers["/1"].Secret, handlers["/2"].Secret = hook.Secret, hook2.Secret
	e.create(store.DefaultPoolID, jobs, 3)

	cfg := ServicesConfig{Webhooks: WebhookConfig{Guard: loopbackGuard(), Batch: 7}}
	replicas := []*instance{e.start(Config{}).withServices(cfg), e.start(Config{}).withServices(cfg)}
	attempts := make([]int, len(replicas))
	g, ctx := errgroup.WithContext(context.Background())
	for i, in := range replicas {
		g.Go(func() error {
			for range 200 {
				n, err := in.services.DeliverWebhooks(ctx)
				if err != nil {
					return err
				}
				attempts[i] += n
				if done, err := e.allDelivered(ctx, hook, hook2); err != nil || done {
					return err
				}
			}
			return fmt.Errorf("replica %d: deliveries still pending after 200 rounds", i)
		})
	}
	require.NoError(t, g.Wait())
	t.Logf("attempts per replica: %v", attempts)
	assert.Equal(t, 2*jobs, attempts[0]+attempts[1], "one attempt per delivery, none repeated")
	assert.Equal(t, 2*jobs, rcv.count(), "the receiver saw each delivery once")
	mu.Lock()
	defer mu.Unlock()
	assert.Len(t, seen, 2*jobs)
	for id, n := range seen {
		assert.Equal(t, 1, n, "event %s", id)
	}
}

func (e *env) allDelivered(ctx context.Context, hooks ...store.Webhook) (bool, error) {
	for _, h := range hooks {
		ds, err := e.store.ListDeliveries(ctx, e.org.ID, h.ID, store.DeliveryPending, store.Page{Limit: 1})
		if err != nil || len(ds) > 0 {
			return false, err
		}
	}
	return true, nil
}

func TestWebhookBackoff(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		jitter  float64
		attempt int
		want    time.Duration
	}{
		"first, no jitter":      {0.5, 1, 30 * time.Second},
		"first, lowest jitter":  {0, 1, 27 * time.Second},
		"first, highest jitter": {0.999999, 1, 33 * time.Second},
		"doubles":               {0.5, 4, 4 * time.Minute},
		"capped":                {0.5, 12, 4 * time.Hour},
		"capped, with jitter":   {0, 30, 216 * time.Minute},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := WebhookConfig{Jitter: fixedJitter(tt.jitter)}
			cfg.defaults()
			assert.InDelta(t, tt.want.Seconds(), cfg.Backoff(tt.attempt).Seconds(), 0.01)
		})
	}
}

// TestWebhookHostileAnswerIsRecorded: a receiver that answers with a NUL
// and bytes that are not UTF-8 cannot stop its failure from being recorded
// (Postgres refuses both in text): the delivery log keeps its words as
// storable text and the retry is scheduled.
func TestWebhookHostileAnswerIsRecorded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	fc := newFakeClock()
	in := e.start(Config{Clock: fc}).withServices(ServicesConfig{Webhooks: WebhookConfig{Guard: loopbackGuard()}})
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("bad\x00news \xff\xfe"))
	}))
	t.Cleanup(rcv.Close)
	hook := e.webhook(rcv.URL, "job.queued")
	e.submit(store.DefaultPoolID, 1)
	fc.Step(2 * time.Second)
	n, err := in.services.DeliverWebhooks(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	d := e.deliveries(hook)[0]
	assert.Equal(t, store.DeliveryPending, d.Status, "the failure is recorded and retried")
	require.NotNil(t, d.LastError)
	assert.Contains(t, *d.LastError, "bad\uFFFDnews \uFFFD")
	assert.Equal(t, 1, d.Attempts)
}

// TestWebhookBacklogDoesNotHoldOtherOrganizations: one organization's
// backlog of 60 deliveries over 12 webhooks was queued before another
// organization's one. A claim of 10 shares its places among organizations in
// turns (and its set of webhooks too, so 12 webhooks cannot fill it), so the
// second organization's delivery goes out in the first claim, not after the
// backlog; the round claims again while claims come back full, so the whole
// backlog drains in one round; each webhook's deliveries still arrive in
// event order.
func TestWebhookBacklogDoesNotHoldOtherOrganizations(t *testing.T) {
	t.Parallel()
	const batch, hooks, jobs = 10, 12, 5
	ctx := context.Background()
	e := newEnv(t)
	fc := newFakeClock()
	in := e.start(Config{Clock: fc}).withServices(ServicesConfig{Webhooks: WebhookConfig{Guard: loopbackGuard(), Batch: batch, Concurrency: 2}})

	var mu sync.Mutex
	var sent []string // path and delivery id, in arrival order
	rcv := newReceiver(t, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sent = append(sent, r.URL.Path+" "+r.Header.Get(webhook.DeliveryHeader))
		mu.Unlock()
	}))
	busy := make([]store.Webhook, hooks)
	for i := range busy {
		busy[i] = e.webhook(fmt.Sprintf("%s/busy/%d", rcv.URL, i), "job.queued")
	}
	e.create(store.DefaultPoolID, jobs, 3)

	other, err := e.store.BootstrapOrg(ctx, "Other", "owner@other.example.com", auth.Owner)
	require.NoError(t, err)
	quiet, err := e.store.CreateWebhook(ctx, other.Org.ID, rcv.URL+"/quiet", "test", []string{"job.queued"})
	require.NoError(t, err)
	e.createJobs(other.Org.ID, store.DefaultPoolID, 1, 0, 3) // the newest event
	fc.SetTime(time.Now().Add(time.Second))                  // past the rows' database timestamps

	n, err := in.services.DeliverWebhooks(ctx)
	require.NoError(t, err)
	assert.Equal(t, hooks*jobs+1, n, "one round drains the backlog")

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, sent, hooks*jobs+1)
	arrived := map[string][]string{} // path → delivery ids in arrival order
	quietAt := -1
	for i, s := range sent {
		path, id, _ := strings.Cut(s, " ")
		if path == "/quiet" {
			quietAt = i
		}
		arrived[path] = append(arrived[path], id)
	}
	assert.Less(t, quietAt, batch, "the other organization's delivery went out in the first claim")

	for i, h := range busy {
		ds, err := e.store.ListDeliveries(ctx, e.org.ID, h.ID, "", store.Page{Limit: 200})
		require.NoError(t, err)
		require.Len(t, ds, jobs)
		var want []string
		for _, d := range slices.Backward(ds) { // the log lists newest first
			assert.Equal(t, store.DeliveryDelivered, d.Status)
			want = append(want, d.ID.String())
		}
		assert.Equal(t, want, arrived[fmt.Sprintf("/busy/%d", i)], "a webhook's deliveries arrive in event order")
	}
	got, err := e.store.ListDeliveries(ctx, other.Org.ID, quiet.ID, "", store.Page{Limit: 10})
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, store.DeliveryDelivered, got[0].Status)
}
