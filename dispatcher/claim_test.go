package dispatcher

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	"github.com/mpegflow/mpegflow/apiserver"
	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/netguard"
	"github.com/mpegflow/mpegflow/internal/netguard/netguardtest"
	"github.com/mpegflow/mpegflow/internal/store"
)

// TestPauseStopsClaimsOnEveryInstance pauses a pool through the REST API
// (the replica next to instance A); a claim on instance B right after the
// response gets no job although jobs are queued, and after resume claims
// flow again.
func TestPauseStopsClaimsOnEveryInstance(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	e.start(Config{}) // instance A, serving workers beside the API
	b := e.start(Config{})
	api, err := apiserver.New(apiserver.Config{Guard: netguard.New(netguard.Config{Resolver: netguardtest.NewPublic()})}, e.store, e.queue, e.objects, events.NewBus(e.queue, time.Now), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	post := func(path string) {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, path, nil)
		req.Header.Set("Authorization", "Bearer "+e.ownerKey)
		resp, err := api.App().Test(req, -1)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		require.Equal(t, http.StatusOK, resp.StatusCode, "POST %s: %s", path, body)
	}

	pool := e.pool("dedicated")
	ids := e.submit(pool.ID, 4)
	w := e.worker(b.addr, pool.ID)
	first := w.mustClaim(t, "pod-b") // claims flow (and the connection is up)
	require.Equal(t, ids[0].String(), first.GetId())
	require.NoError(t, w.complete(t.Context(), first))
	ids = ids[1:]

	// The very first claim after the pause response is refused: there is no
	// window at all. And a paused pool answers at once instead of holding
	// the claim for its wait: each claim asks to wait a minute under a
	// 20 s deadline, so a long poll would end in DeadlineExceeded. (No
	// wall-clock bound: other test packages share these two cores.)
	post("/v1/pools/" + pool.ID + "/pause")
	var slowest time.Duration
	for range 3 {
		cctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		start := time.Now()
		job, err := w.claim(cctx, "pod-b", int32(time.Minute/time.Millisecond))
		slowest = max(slowest, time.Since(start))
		cancel()
		require.NoError(t, err, "a paused pool answers at once, it does not long-poll")
		require.Nil(t, job, "a paused pool hands out no work")
	}
	t.Logf("instance B refused claims in at most %s", slowest)
	assert.EqualValues(t, len(ids), e.queueLen(pool.ID), "queued jobs wait in redis")
	row, err := e.store.GetPool(ctx, store.PoolScope{OrgID: e.org.ID}, pool.ID)
	require.NoError(t, err)
	assert.Equal(t, "paused", row.Status)

	post("/v1/pools/" + pool.ID + "/resume")
	for i := range ids {
		job := w.mustClaim(t, "pod-b")
		assert.Equal(t, ids[i].String(), job.GetId(), "claims flow again in submission order")
		require.NoError(t, w.complete(t.Context(), job))
	}
	assert.Zero(t, e.queueLen(pool.ID))
}

// TestLongPollClaimWakesOnPush: a claim that long-polls an empty queue
// returns the job pushed while it waits, at its next look (driven by the
// injected clock), and an empty answer once its wait is over.
func TestLongPollClaimWakesOnPush(t *testing.T) {
	t.Parallel()
	e, fc, w := longPollEnv(t)
	longPoll := func(pod string) <-chan claimResult { return w.longPoll(t, fc, pod) }

	got := longPoll("pod-1")
	id := e.submit(store.DefaultPoolID, 1)[0]
	select {
	case r := <-got:
		t.Fatalf("the claim answered before its next look: %v, %v", r.job, r.err)
	default:
	}
	fc.Step(200 * time.Millisecond)
	r := <-got
	require.NoError(t, r.err)
	require.NotNil(t, r.job, "the long poll returns the pushed job")
	assert.Equal(t, id.String(), r.job.GetId())

	// Without a push the claim looks again every poll interval and answers
	// empty exactly when its 5 s are over.
	got = longPoll("pod-2")
	steps := 0
	for answered := false; !answered; {
		require.Less(t, steps, 100, "the long poll never ended")
		fc.Step(200 * time.Millisecond)
		steps++
		require.Eventually(t, func() bool {
			select {
			case r = <-got:
				answered = true
				return true
			default:
				return fc.HasWaiters()
			}
		}, 10*time.Second, time.Millisecond)
	}
	require.NoError(t, r.err)
	assert.Nil(t, r.job, "nothing arrived within the wait")
	assert.Equal(t, 25, steps, "answered after 5 s of (fake) time, not before")
}

// TestPodsWaitWhileAClaimLongPolls: the coordinator counts the claims
// that wait for work (completions gather only while there are some), and
// a claim that gets its job, or is cut off, is no longer counted.
func TestPodsWaitWhileAClaimLongPolls(t *testing.T) {
	t.Parallel()
	e, in, fc, w := longPollInstance(t)
	assert.False(t, in.coord.podsWait(), "no claim yet")

	got := w.longPoll(t, fc, "pod-1")
	assert.True(t, in.coord.podsWait(), "a claim waits on an empty lane")
	e.submit(store.DefaultPoolID, 1)
	fc.Step(200 * time.Millisecond)
	r := <-got
	require.NoError(t, r.err)
	require.NotNil(t, r.job)
	assert.False(t, in.coord.podsWait(), "the claim got its job")

	ctx, cancel := context.WithCancel(t.Context())
	cut := make(chan error, 1)
	go func() {
		_, err := w.claim(ctx, "pod-2", 5000)
		cut <- err
	}()
	require.Eventually(t, in.coord.podsWait, 10*time.Second, time.Millisecond)
	cancel()
	require.Error(t, <-cut)
	require.Eventually(t, func() bool { return !in.coord.podsWait() }, 10*time.Second, time.Millisecond, "a cut claim is not counted")
}

// claimResult is what a claim answered.
type claimResult struct {
	job *coordinatorv1.Job
	err error
}

// longPollEnv is a coordinator on a fake clock that long-polling claims
// wait on (poll interval 200 ms), and a worker of the default pool.
func longPollEnv(t *testing.T) (*env, *testingclock.FakeClock, *worker) {
	t.Helper()
	e, _, fc, w := longPollInstance(t)
	return e, fc, w
}

// longPollInstance is longPollEnv with the coordinator's instance (its
// metrics).
func longPollInstance(t *testing.T) (*env, *instance, *testingclock.FakeClock, *worker) {
	t.Helper()
	e := newEnv(t)
	fc := newFakeClock()
	in := e.start(Config{Clock: fc, PollInterval: 200 * time.Millisecond})
	return e, in, fc, e.worker(in.addr, store.DefaultPoolID)
}

// longPoll starts a claim of pod that may wait 5 s and returns once it
// has found the queue empty and waits on the fake clock.
func (w *worker) longPoll(t *testing.T, fc *testingclock.FakeClock, pod string) <-chan claimResult {
	t.Helper()
	out := make(chan claimResult, 1)
	go func() {
		j, err := w.claim(t.Context(), pod, 5000)
		out <- claimResult{j, err}
	}()
	require.Eventually(t, fc.HasWaiters, 10*time.Second, time.Millisecond)
	return out
}

// TestIdleClaimRegistersAfterAPollInterval: a claim that finds nothing
// registers its worker once it has waited a poll interval, not at its
// first empty pop (a pod woken to a job before then is registered by the
// claim's own statement), and a drained worker's long poll then ends with
// an empty answer instead of waiting out its time.
func TestIdleClaimRegistersAfterAPollInterval(t *testing.T) {
	t.Parallel()
	e, fc, w := longPollEnv(t)
	status := func(pod string) string {
		var s string
		err := e.db.QueryRow(t.Context(), `SELECT status FROM workers WHERE id = $1`, pod).Scan(&s)
		if errors.Is(err, pgx.ErrNoRows) {
			return "unregistered"
		}
		require.NoError(t, err)
		return s
	}

	// Woken to a job within its first poll interval: registered by the claim.
	got := w.longPoll(t, fc, "pod-busy")
	assert.Equal(t, "unregistered", status("pod-busy"), "no statement at the first empty pop")
	id := e.submit(store.DefaultPoolID, 1)[0]
	fc.Step(200 * time.Millisecond)
	r := <-got
	require.NoError(t, r.err)
	require.NotNil(t, r.job)
	assert.Equal(t, id.String(), r.job.GetId())
	assert.Equal(t, "online", status("pod-busy"))

	// Idle for a poll interval: registered while it goes on waiting.
	got = w.longPoll(t, fc, "pod-idle")
	assert.Equal(t, "unregistered", status("pod-idle"))
	fc.Step(200 * time.Millisecond)
	require.Eventually(t, func() bool { return status("pod-idle") == "online" }, 10*time.Second, time.Millisecond)
	require.Eventually(t, fc.HasWaiters, 10*time.Second, time.Millisecond)
	select {
	case r := <-got:
		t.Fatalf("the idle claim answered before its wait was up: %v, %v", r.job, r.err)
	default:
	}
	fc.Step(5 * time.Second)
	r = <-got
	require.NoError(t, r.err)
	assert.Nil(t, r.job, "nothing arrived within the wait")

	// Drained: the next long poll answers empty at its first poll interval.
	_, err := e.store.DrainWorker(t.Context(), "pod-idle")
	require.NoError(t, err)
	got = w.longPoll(t, fc, "pod-idle")
	fc.Step(200 * time.Millisecond)
	r = <-got
	require.NoError(t, r.err)
	assert.Nil(t, r.job)
	assert.Equal(t, "draining", status("pod-idle"))
}
