package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/events"
)

// replica is one more apiserver sharing the fixture's Postgres and Redis,
// serving on a loopback port with its own event hub.
type replica struct {
	addr string
	hub  *events.Hub
	bus  *events.Bus
}

func (f *fixture) replica(t *testing.T) replica {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	hub := events.NewHub(f.rdb, f.queue.Keys().Events(), 16, log)
	bus := events.NewBus(f.queue, time.Now)
	srv, err := New(Config{Hub: hub, Guard: testGuard()}, f.store, f.queue, f.objects, bus, log)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = srv.Serve(ctx, ln); done <- struct{}{} }()
	go func() { _ = hub.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	return replica{addr: ln.Addr().String(), hub: hub, bus: bus}
}

func dialWS(t *testing.T, addr, key, query string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	h := http.Header{}
	if key != "" {
		h.Set("Authorization", "Bearer "+key)
	}
	return websocket.DefaultDialer.DialContext(t.Context(), "ws://"+addr+"/ws"+query, h)
}

// waitSubscribers waits until the hub has n subscribers (the upgrade
// completes before the handler subscribes... in the same request).
func waitSubscribers(t *testing.T, h *events.Hub, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return h.Subscribers() == n }, 5*time.Second, 5*time.Millisecond)
}

// TestWebSocketFansOutAcrossReplicas: an event published on replica A
// reaches a client of replica B, filtered to the caller's organization and
// jobs; a client that stops reading is dropped without slowing the others.
func TestWebSocketFansOutAcrossReplicas(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, b := f.replica(t), f.replica(t)

	_, resp, err := dialWS(t, b.addr, "", "")
	require.Error(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	job := f.submitJob(t, f.keys[auth.Editor], urlJob())
	other := uuid.New()
	all, _, err := dialWS(t, b.addr, f.keys[auth.Viewer], "")
	require.NoError(t, err)
	defer all.Close()
	onlyJob, _, err := dialWS(t, b.addr, f.keys[auth.Viewer], "?jobs="+job.ID)
	require.NoError(t, err)
	defer onlyJob.Close()
	orgB, _, err := dialWS(t, b.addr, f.keyB, "")
	require.NoError(t, err)
	defer orgB.Close()
	waitSubscribers(t, b.hub, 3)

	ctx := t.Context()
	require.NoError(t, a.bus.Emit(ctx, events.Event{Type: "job.progress", OrgID: &f.orgA.ID, JobID: &other, Data: map[string]any{"progress": 0.1}}))
	require.NoError(t, a.bus.Emit(ctx, events.Event{Type: "job.progress", OrgID: &f.orgA.ID, JobID: new(uuid.MustParse(job.ID)), Data: map[string]any{"progress": 0.5}}))

	read := func(c *websocket.Conn) events.Event {
		t.Helper()
		require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, msg, err := c.ReadMessage()
		require.NoError(t, err)
		var e events.Event
		require.NoError(t, json.Unmarshal(msg, &e))
		return e
	}
	first := read(all)
	assert.Equal(t, other, *first.JobID, "the org-wide client sees every job in order")
	assert.Equal(t, job.ID, read(all).JobID.String())
	got := read(onlyJob)
	assert.Equal(t, job.ID, got.JobID.String(), "the filtered client sees only its job")
	assert.InDelta(t, 0.5, got.Data["progress"], 1e-9)

	// Org B's client saw nothing of org A.
	require.NoError(t, orgB.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
	_, _, err = orgB.ReadMessage()
	require.Error(t, err, "another organization's events never reach this client")

	require.NoError(t, all.Close())
	waitSubscribers(t, b.hub, 2)

	// A stalled client: it never reads. The hub drops it once its buffer is
	// full while the reading client keeps receiving everything.
	// Its socket gets a small receive buffer (no autotuning), so the
	// kernel cannot absorb the whole stream on its behalf.
	small := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			err = c.(*net.TCPConn).SetReadBuffer(16 << 10)
		}
		return c, err
	}}
	stalled, _, err := small.DialContext(t.Context(), "ws://"+b.addr+"/ws?jobs="+job.ID,
		http.Header{"Authorization": {"Bearer " + f.keys[auth.Viewer]}})
	require.NoError(t, err)
	defer stalled.Close()
	waitSubscribers(t, b.hub, 3)
	big := strings.Repeat("x", 64<<10)
	const n = 400
	received := make(chan int, 1)
	go func() {
		count := 0
		for count < n {
			_ = onlyJob.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, _, err := onlyJob.ReadMessage(); err != nil {
				break
			}
			count++
		}
		received <- count
	}()
	for i := range n {
		require.NoError(t, a.bus.Emit(ctx, events.Event{Type: "job.progress", OrgID: &f.orgA.ID, JobID: new(uuid.MustParse(job.ID)), Data: map[string]any{"i": i, "pad": big}}))
	}
	assert.Equal(t, n, <-received, "the reading client got every event")

	require.Eventually(t, func() bool { return b.hub.Subscribers() == 2 }, 10*time.Second, 10*time.Millisecond, "the stalled client was dropped")
	// When it finally reads, it finds the end of the connection at once
	// (a reset, or a 1008 close frame when the server could still send it),
	// perhaps after some of what its own socket had buffered.
	for {
		require.NoError(t, stalled.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, _, err := stalled.ReadMessage()
		if err == nil {
			continue
		}
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server closed the connection: %v", err)
		break
	}
}

// TestWebSocketFailedHandshakeLeavesNoSubscriber: an upgrade request the
// handshake refuses (an unknown protocol version) never runs the handler;
// its subscription must not stay behind, keeping the hub listening.
func TestWebSocketFailedHandshakeLeavesNoSubscriber(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.replica(t)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+r.addr+"/ws", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+f.keys[auth.Viewer])
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "99")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.NotEqual(t, http.StatusSwitchingProtocols, resp.StatusCode)
	assert.Equal(t, 0, r.hub.Subscribers(), "the refused upgrade left its subscription")
}
