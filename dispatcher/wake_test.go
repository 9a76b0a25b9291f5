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

// TestWakeupsPassOnUnusedWake: a waiter that leaves after it was woken
// hands the wake to the next one, so no push is left unclaimed while a
// claim still waits; a wake with no waiter is dropped.
func TestWakeupsPassOnUnusedWake(t *testing.T) {
	w := newWakeups(func(h handed) { t.Errorf("no job was handed, yet %v came back", h) }, time.After)
	w.wake("lane", 1) // nobody waits: dropped
	a, doneA, _ := w.join("lane", false, store.Worker{}, false)
	b, doneB, _ := w.join("lane", false, store.Worker{}, false)
	require.Equal(t, 2, w.waiters("lane"))
	w.wake("lane", 1)
	require.Len(t, a, 1, "the oldest waiter is woken")
	require.Empty(t, b)
	require.Equal(t, 1, w.waiters("lane"))
	doneA() // leaves without using it
	require.Len(t, b, 1, "the unused wake went to the next waiter")
	<-b
	doneB()
	require.Zero(t, w.waiters("lane"))
	w.wake("lane", 3)
	c, doneC, _ := w.join("lane", false, store.Worker{}, false)
	require.Empty(t, c, "wakes are not stored for later waiters")
	doneC()
}

// TestWakeupsPassOnUnusedHandedJob: a job is handed to the lane's oldest
// waiter alone; one that leaves with it unclaimed passes it to the next
// waiter, and the last one to the unclaimed function, so a handed job is
// never dropped. With nobody waiting the offer is refused and its
// callback does not run.
func TestWakeupsPassOnUnusedHandedJob(t *testing.T) {
	var back []handed
	w := newWakeups(func(h handed) { back = append(back, h) }, time.After)
	job := handed{pool: "p", lane: "live", id: "job-1", org: "org-1"}
	require.False(t, w.offer("lane", job, func() { t.Error("announced with nobody waiting") }))
	a, doneA, _ := w.join("lane", false, store.Worker{}, false)
	b, doneB, _ := w.join("lane", false, store.Worker{}, false)
	announced := 0
	require.True(t, w.offer("lane", job, func() { announced++ }))
	require.Equal(t, 1, announced, "announced once, as a waiter took the job")
	require.Len(t, a, 1, "the oldest waiter has the job")
	require.Empty(t, b)
	require.Equal(t, 1, w.waiters("lane"), "the waiter handed the job no longer waits")
	doneA() // leaves without claiming it
	require.Len(t, b, 1, "the job went to the next waiter")
	require.Equal(t, job, <-b)
	require.False(t, w.offer("lane", handed{pool: "p", lane: "live", id: "job-2", org: "org-1"}, nil),
		"b received its job and no longer waits")
	doneB()

	c, doneC, _ := w.join("lane", false, store.Worker{}, false)
	require.True(t, w.offer("lane", job, nil))
	require.Len(t, c, 1)
	doneC() // leaves with it, nobody else waits
	require.Equal(t, []handed{job}, back, "the job came back to be pushed")
	require.Zero(t, w.waiters("lane"))
}

// TestWakeupsSkipOnlyBehindAnIdleWaiter: an arriving claim may skip its
// pop only while a waiter that popped nothing (idle) is registered on the
// lane, not behind one whose pop is still on its way (which may yet find
// the list full), and not once every idle waiter has been woken; later
// rounds of a claim (woken, or at its poll) always pop.
func TestWakeupsSkipOnlyBehindAnIdleWaiter(t *testing.T) {
	w := newWakeups(func(handed) {}, time.After)
	a, doneA, skip := w.join("lane", true, store.Worker{}, false)
	require.False(t, skip, "nobody waits")
	_, doneB, skip := w.join("lane", true, store.Worker{}, false)
	require.False(t, skip, "a's pop has not come back: the list may hold ids")
	w.setIdle("lane", a)
	_, doneC, skip := w.join("lane", true, store.Worker{}, false)
	require.True(t, skip, "a found the list empty and nothing woke it since")
	_, doneX, skip := w.join("lane", false, store.Worker{}, false)
	require.False(t, skip, "a claim woken or at its poll pops")
	doneX()
	w.wake("lane", 1) // a, the oldest, goes to pop the pushed id
	_, doneD, skip := w.join("lane", true, store.Worker{}, false)
	require.True(t, skip, "c is idle from its start, and the push has a's pop on its way")
	w.wake("lane", 3) // b, c and d
	_, doneE, skip := w.join("lane", true, store.Worker{}, false)
	require.False(t, skip, "every idle waiter was woken")
	for _, done := range []func() handed{doneA, doneB, doneC, doneD, doneE} {
		done()
	}
	require.Empty(t, w.idle, "no idle mark outlives its waiter")
	require.Empty(t, w.idleOn)
}

// waitWakeSubscribed waits until e's coordinator listens on the wake
// channel: a push before that wakes nobody.
func waitWakeSubscribed(t *testing.T, e *env) {
	t.Helper()
	require.Eventually(t, func() bool {
		n, err := e.rdb.PubSubNumSub(t.Context(), e.queue.Keys().Wake()).Result()
		return err == nil && n[e.queue.Keys().Wake()] == 1
	}, 10*time.Second, 10*time.Millisecond, "the coordinator subscribed to the wake channel")
}

// TestPushWakesLongPollingClaims: with a poll interval far beyond the
// test's deadline, only the push's wake can hand a queued job to claims
// that are already waiting: one push of one id wakes exactly one of three
// waiting claims, a push of two ids the other two.
func TestPushWakesLongPollingClaims(t *testing.T) {
	e := newEnv(t)
	inst := e.start(Config{PollInterval: time.Hour, MaxWait: time.Minute})
	pool := "default"
	laneKey := e.queue.Keys().Queue(pool, "live")
	waitWakeSubscribed(t, e)

	w := e.worker(inst.addr, pool)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Second)
	defer cancel()
	got := make(chan *coordinatorv1.Job, 3)
	for i := range 3 {
		go func() {
			j, err := w.claim(ctx, "pod-"+string(rune('a'+i)), 45_000)
			if err != nil {
				t.Errorf("claim: %v", err)
			}
			got <- j
		}()
	}
	require.Eventually(t, func() bool { return inst.coord.wakeups.waiters(laneKey) == 3 }, 10*time.Second, 5*time.Millisecond,
		"three claims wait on the lane")

	first := e.submit(pool, 1)
	j := <-got
	require.NotNil(t, j, "a waiting claim got the pushed job")
	require.Equal(t, first[0].String(), j.GetId())
	require.Equal(t, 2, inst.coord.wakeups.waiters(laneKey), "one wake for one id: the other two still wait")
	require.InDelta(t, 1, testutil.ToFloat64(inst.metrics.ClaimWakeups), 0)

	more := e.submit(pool, 2)
	want := map[string]bool{more[0].String(): true, more[1].String(): true}
	for range 2 {
		j := <-got
		require.NotNil(t, j)
		require.True(t, want[j.GetId()], "job %s is one of the two pushed", j.GetId())
		delete(want, j.GetId())
	}
	require.InDelta(t, 3, testutil.ToFloat64(inst.metrics.ClaimWakeups), 0)
}

// TestClaimBehindWaitersDoesNotPop: a claim that arrives while another
// waits on its lane knows the lane empty and waits without popping; jobs
// handed over reach both in turn, oldest first, and a push still wakes a
// claim that never popped.
func TestClaimBehindWaitersDoesNotPop(t *testing.T) {
	e := newEnv(t)
	in := e.start(Config{PollInterval: time.Hour, MaxWait: time.Minute})
	waitWakeSubscribed(t, e)
	pool := e.pool("behind")
	ids := e.create(pool.ID, 3, 3)
	pops := func() uint64 { return popBatches(t, in) }
	laneKey := e.queue.Keys().Queue(pool.ID, apiv1.LaneLive)
	idle := func() int {
		in.coord.wakeups.mu.Lock()
		defer in.coord.wakeups.mu.Unlock()
		return in.coord.wakeups.idleOn[laneKey]
	}
	firstJobs, firstErrs := claimAsync(t, e, in, pool.ID, "pod-a")
	require.Eventually(t, func() bool { return idle() == 1 }, 10*time.Second, 5*time.Millisecond, "the first claim popped nothing and waits, idle")
	require.Equal(t, uint64(1), pops())
	secondJobs, secondErrs := claimAsync(t, e, in, pool.ID, "pod-b")
	thirdJobs, thirdErrs := claimAsync(t, e, in, pool.ID, "pod-c")
	require.Equal(t, uint64(1), pops(), "the claims behind it did not pop")

	org := e.org.ID.String()
	require.True(t, in.coord.Offer(pool.ID, apiv1.LaneLive, org, ids[0].String(), nil))
	require.Equal(t, ids[0].String(), answer(t, firstJobs, firstErrs).GetId(), "the oldest waiter first")
	require.True(t, in.coord.Offer(pool.ID, apiv1.LaneLive, org, ids[1].String(), nil))
	require.Equal(t, ids[1].String(), answer(t, secondJobs, secondErrs).GetId())
	e.push(pool.ID, ids[2])
	require.Equal(t, ids[2].String(), answer(t, thirdJobs, thirdErrs).GetId(), "woken by the push, it popped the id")
	require.Equal(t, uint64(2), pops(), "one pop for the push's wake")
}

// popBatches is how many pop batches (Redis round trips of pops) in has
// sent.
func popBatches(t *testing.T, in *instance) uint64 {
	t.Helper()
	n, _ := histogramOf(t, in.metrics.Registry, "mpegflow_group_commit_batch_size", map[string]string{"kind": "pop"})
	return n
}
