package dispatcher

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/store"
)

// claimAsync starts a long-polling claim of pod on pool's live lane and
// waits until the coordinator counts it among the lane's waiters; the
// claim's answer (a job, none, or an error) arrives on the channels.
func claimAsync(t *testing.T, e *env, in *instance, pool, pod string) (<-chan *coordinatorv1.Job, <-chan error) {
	t.Helper()
	return claimAsyncIn(t.Context(), t, e, in, pool, pod)
}

// claimAsyncIn is claimAsync with the claim's call under ctx.
func claimAsyncIn(ctx context.Context, t *testing.T, e *env, in *instance, pool, pod string) (<-chan *coordinatorv1.Job, <-chan error) {
	t.Helper()
	laneKey := e.queue.Keys().Queue(pool, apiv1.LaneLive)
	before := in.coord.wakeups.waiters(laneKey)
	jobs, errs := make(chan *coordinatorv1.Job, 1), make(chan error, 1)
	go func() {
		j, err := e.worker(in.addr, pool).claim(ctx, pod, 45_000)
		if err != nil {
			errs <- err
			return
		}
		jobs <- j
	}()
	require.Eventually(t, func() bool { return in.coord.wakeups.waiters(laneKey) == before+1 }, 10*time.Second, 5*time.Millisecond,
		"the claim waits on its lane")
	return jobs, errs
}

// answer is the claim's answer, or the test fails.
func answer(t *testing.T, jobs <-chan *coordinatorv1.Job, errs <-chan error) *coordinatorv1.Job {
	t.Helper()
	select {
	case j := <-jobs:
		return j
	case err := <-errs:
		t.Fatalf("claim: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the claim did not answer")
	}
	return nil
}

// TestOfferHandsJobToWaitingClaim: a job offered while a claim waits on
// its lane goes to that claim, running under the claim's pod, without
// ever being on the lane's list (so no pop took it); the announcement
// runs once, before the claim answers. With no claim waiting the offer is
// refused and announces nothing, and the job is the caller's to push.
func TestOfferHandsJobToWaitingClaim(t *testing.T) {
	e := newEnv(t)
	// Only a push's wake or an offer can end the wait within the test.
	in := e.start(Config{PollInterval: time.Hour, MaxWait: time.Minute})
	pool := e.pool("handoff")
	ids := e.create(pool.ID, 2, 3)
	org := e.org.ID.String()

	require.False(t, in.coord.Offer(pool.ID, apiv1.LaneLive, org, ids[0].String(), func() { t.Error("announced with no claim waiting") }))

	jobs, errs := claimAsync(t, e, in, pool.ID, "pod-a")
	announced := 0
	require.True(t, in.coord.Offer(pool.ID, apiv1.LaneLive, org, ids[1].String(), func() { announced++ }))
	require.Equal(t, 1, announced)
	j := answer(t, jobs, errs)
	require.NotNil(t, j, "the waiting claim received the offered job")
	require.Equal(t, ids[1].String(), j.GetId())
	got := e.job(ids[1])
	require.Equal(t, apiv1.JobRunning, got.Status)
	require.Equal(t, "pod-a", *got.WorkerID)
	require.Equal(t, 1, got.Attempts)
	require.Zero(t, e.queueLen(pool.ID), "the handed job was never pushed")
	require.Equal(t, apiv1.JobQueued, e.job(ids[0]).Status, "the refused offer's job is left for its caller to push")
	require.Equal(t, 1.0, testutil.ToFloat64(in.metrics.ClaimHandoffs))
	require.Zero(t, testutil.ToFloat64(in.metrics.ClaimWakeups), "a hand-off is not counted as a wake")
}

// TestOfferToPausedPoolGoesBackToItsList: a job handed to a waiting claim
// of a pool that Postgres has paused (its Redis key not set yet, as in the
// moment between the pause's commit and its key) is not claimed: the claim
// answers no job, as a paused pop does, and the id goes onto the lane's
// list, where it waits, queued, for the resume.
func TestOfferToPausedPoolGoesBackToItsList(t *testing.T) {
	e := newEnv(t)
	in := e.start(Config{PollInterval: time.Hour, MaxWait: time.Minute})
	pool := e.pool("paused-handoff")
	id := e.create(pool.ID, 1, 3)[0]
	jobs, errs := claimAsync(t, e, in, pool.ID, "pod-a")
	_, err := e.store.SetPoolStatus(t.Context(), store.PoolScope{OrgID: e.org.ID}, pool.ID, apiv1.PoolPaused)
	require.NoError(t, err)

	require.True(t, in.coord.Offer(pool.ID, apiv1.LaneLive, e.org.ID.String(), id.String(), nil))
	require.Nil(t, answer(t, jobs, errs), "a paused pool's claim gets no job")
	require.Equal(t, apiv1.JobQueued, e.job(id).Status)
	require.Nil(t, e.job(id).WorkerID)
	require.Equal(t, int64(1), e.queueLen(pool.ID), "the id is back on its list")
}

// TestPoppedIDOfPausedPoolIsNotClaimed: Postgres's pause gates a popped id
// too, when the pop script's key is not set (yet): the claim takes
// nothing, answers no job and puts the id back, and once the pool resumes
// the same id is claimed.
func TestPoppedIDOfPausedPoolIsNotClaimed(t *testing.T) {
	e := newEnv(t)
	in := e.start(Config{})
	pool := e.pool("paused-pop")
	id := e.submit(pool.ID, 1)[0]
	own := store.PoolScope{OrgID: e.org.ID}
	_, err := e.store.SetPoolStatus(t.Context(), own, pool.ID, apiv1.PoolPaused)
	require.NoError(t, err)

	w := e.worker(in.addr, pool.ID)
	j, err := w.claim(t.Context(), "pod-a", 0)
	require.NoError(t, err)
	require.Nil(t, j, "paused in Postgres: nothing claimed")
	require.Equal(t, apiv1.JobQueued, e.job(id).Status)
	require.Equal(t, int64(1), e.queueLen(pool.ID), "the popped id went back")

	_, err = e.store.SetPoolStatus(t.Context(), own, pool.ID, apiv1.PoolActive)
	require.NoError(t, err)
	require.Equal(t, id.String(), w.mustClaim(t, "pod-a").GetId())
}

// TestHandedJobOfLeavingClaimIsPushed: a claim that leaves holding a job
// handed to it, unclaimed (its pod went away), passes it on; with no other
// claim waiting the job goes onto its lane's list, first in line, and an
// ordinary claim then takes it.
func TestHandedJobOfLeavingClaimIsPushed(t *testing.T) {
	e := newEnv(t)
	in := e.start(Config{})
	waitWakeSubscribed(t, e)
	pool := e.pool("left-handoff")
	ids := e.create(pool.ID, 2, 3)
	e.push(pool.ID, ids[0]) // already waiting on the list
	// Its wake must not reach the waiter registered below: a wake of
	// another lane, published after it, is received after it.
	other := e.pool("left-handoff-sentinel")
	sentinel, sentinelDone, _ := in.coord.wakeups.join(e.queue.Keys().Queue(other.ID, apiv1.LaneLive), false, store.Worker{}, false)
	e.push(other.ID, e.create(other.ID, 1, 3)[0])
	select {
	case <-sentinel:
	case <-time.After(30 * time.Second):
		t.Fatal("the sentinel's wake never came")
	}
	sentinelDone()
	laneKey := e.queue.Keys().Queue(pool.ID, apiv1.LaneLive)

	_, done, _ := in.coord.wakeups.join(laneKey, false, store.Worker{}, false) // a claim waiting, then gone
	require.True(t, in.coord.Offer(pool.ID, apiv1.LaneLive, e.org.ID.String(), ids[1].String(), nil))
	done()
	require.Equal(t, int64(2), e.queueLen(pool.ID))
	w := e.worker(in.addr, pool.ID)
	require.Equal(t, ids[1].String(), w.mustClaim(t, "pod-a").GetId(), "the handed job goes next")
	require.Equal(t, ids[0].String(), w.mustClaim(t, "pod-b").GetId())
}
