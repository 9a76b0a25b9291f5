package dispatcher

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/store"
)

// reserve reserves the claim waiting idle on pool's live lane (its pop,
// made just after it registered, may still be on its way).
func reserve(t *testing.T, in *instance, pool, org string) (*store.JobClaim, func(store.Job, bool, func()) bool) {
	t.Helper()
	var (
		claim  *store.JobClaim
		settle func(store.Job, bool, func()) bool
	)
	require.Eventually(t, func() bool {
		claim, settle = in.coord.Reserve(t.Context(), pool, apiv1.LaneLive, org)
		return claim != nil
	}, 10*time.Second, 5*time.Millisecond, "the waiting claim is idle and reserved")
	return claim, settle
}

// submitClaimed commits a URL job in pool by the submission statement,
// inserted claimed by claim when it may be.
func (e *env) submitClaimed(pool string, claim *store.JobClaim) store.Job {
	e.t.Helper()
	u := "https://media.example.com/in.mp4"
	res, err := e.store.CreateJobs(e.t.Context(), []store.NewJob{{OrgID: e.org.ID, PoolID: pool, Lane: apiv1.LaneLive, MaxAttempts: 3,
		InputURL: &u, Spec: testSpec, Metadata: json.RawMessage(`{}`), Claim: claim}})
	require.NoError(e.t, err)
	require.NoError(e.t, res[0].Err)
	require.True(e.t, res[0].Created)
	return res[0].Job
}

// TestSubmissionInsertedClaimedGoesToItsClaim: a submission that reserves
// the claim waiting on its lane has its job inserted running under that
// claim's pod, token and lease; the claim hands it to its pod without a
// statement of its own, and the pod's token completes it. The job never
// touches the lane's list. With no claim waiting idle, nothing is
// reserved.
func TestSubmissionInsertedClaimedGoesToItsClaim(t *testing.T) {
	e := newEnv(t)
	in := e.start(Config{PollInterval: time.Hour, MaxWait: time.Minute})
	pool := e.pool("reserve")
	claim, settle := in.coord.Reserve(t.Context(), pool.ID, apiv1.LaneLive, e.org.ID.String())
	require.Nil(t, claim, "no claim waits")
	require.Nil(t, settle)

	jobs, errs := claimAsync(t, e, in, pool.ID, "pod-a")
	require.Eventually(t, func() bool { return in.coord.wakeups.waiters(e.queue.Keys().Queue(pool.ID, apiv1.LaneLive)) == 1 },
		10*time.Second, 5*time.Millisecond)
	stranger, _ := in.coord.Reserve(t.Context(), pool.ID, apiv1.LaneLive, uuid.NewString())
	require.Nil(t, stranger, "another organization's submission holds no claim of this one's pool")
	claim, settle = reserve(t, in, pool.ID, e.org.ID.String())
	require.Equal(t, "pod-a", claim.Worker.ID)
	require.Equal(t, pool.ID, claim.Worker.PoolID)
	again, _ := in.coord.Reserve(t.Context(), pool.ID, apiv1.LaneLive, e.org.ID.String())
	require.Nil(t, again, "a reserved claim is reserved once")

	job := e.submitClaimed(pool.ID, claim)
	require.Equal(t, apiv1.JobRunning, job.Status, "inserted claimed")
	announced := 0
	require.True(t, settle(job, true, func() { announced++ }))
	require.Equal(t, 1, announced)
	j := answer(t, jobs, errs)
	require.NotNil(t, j, "the claim received the job")
	require.Equal(t, job.ID.String(), j.GetId())
	require.NotEmpty(t, j.GetClaimToken())
	require.Equal(t, claim.LeaseUntil.UnixMilli(), j.GetLeaseExpiresUnixMs())
	require.Equal(t, int32(1), j.GetAttempt())
	require.Equal(t, "https://media.example.com/in.mp4", j.GetInputUrl(), "readied as a claimed job is")
	got := e.job(job.ID)
	require.Equal(t, apiv1.JobRunning, got.Status)
	require.Equal(t, "pod-a", *got.WorkerID)
	require.Zero(t, e.queueLen(pool.ID), "never pushed")
	require.Equal(t, 1.0, testutil.ToFloat64(in.metrics.ClaimHandoffs))

	require.NoError(t, e.worker(in.addr, pool.ID).complete(t.Context(), j), "the pod's token is the job's")
	require.Equal(t, apiv1.JobCompleted, e.job(job.ID).Status)
}

// TestSharedPoolClaimReservedByAnyOrganization: the shared pool's claims
// serve every organization, so any organization's submission may reserve
// one; settled without a job, the claim goes on waiting and then takes a
// pushed job.
func TestSharedPoolClaimReservedByAnyOrganization(t *testing.T) {
	e := newEnv(t)
	in := e.start(Config{PollInterval: time.Hour, MaxWait: time.Minute})
	waitWakeSubscribed(t, e)
	jobs, errs := claimAsync(t, e, in, store.DefaultPoolID, "pod-a")
	claim, settle := reserve(t, in, store.DefaultPoolID, uuid.NewString())
	require.Equal(t, "pod-a", claim.Worker.ID)
	require.False(t, settle(store.Job{}, false, nil), "no job to hand over")
	id := e.submit(store.DefaultPoolID, 1)[0]
	j := answer(t, jobs, errs)
	require.NotNil(t, j, "the claim went on waiting and was woken by the push")
	require.Equal(t, id.String(), j.GetId())
}

// TestReservedClaimWhosePodLeftHandsItsJobBack: a reserved claim whose
// pod leaves before the submission's statement has run waits for it, and
// the job claimed for it goes back to its queue at once, queued and on its
// lane's list, not left running under a lease nobody holds.
func TestReservedClaimWhosePodLeftHandsItsJobBack(t *testing.T) {
	e := newEnv(t)
	in := e.start(Config{PollInterval: time.Hour, MaxWait: time.Minute})
	pool := e.pool("reserve-gone")
	ctx, cancel := context.WithCancel(t.Context())
	jobs, errs := claimAsyncIn(ctx, t, e, in, pool.ID, "pod-a")
	claim, settle := reserve(t, in, pool.ID, e.org.ID.String())
	cancel()
	select {
	case err := <-errs:
		require.Error(t, err, "the pod's call ended")
	case j := <-jobs:
		t.Fatalf("a cancelled claim answered %v", j)
	}

	job := e.submitClaimed(pool.ID, claim)
	require.Equal(t, apiv1.JobRunning, job.Status)
	require.True(t, settle(job, true, nil), "dealt with by the claim")
	require.Eventually(t, func() bool { return e.job(job.ID).Status == apiv1.JobQueued }, 10*time.Second, 10*time.Millisecond,
		"the job went back to its queue")
	require.Nil(t, e.job(job.ID).WorkerID)
	require.Eventually(t, func() bool { return e.queueLen(pool.ID) == 1 }, 10*time.Second, 10*time.Millisecond, "and onto its list")
	require.Equal(t, job.ID.String(), e.worker(in.addr, pool.ID).mustClaim(t, "pod-b").GetId(), "another pod claims it")
}

// TestReservedClaimOfPausedPoolGetsNoJob: a submission to a pool paused in
// Postgres inserts its job queued though a claim was reserved for it; the
// claim is handed the job to claim, its own statement refuses it for the
// pause, it answers no job, and the id waits on its list for the resume.
// A reservation settled without a job (the submission failed or was a
// replay) wakes its claim, which goes on waiting.
func TestReservedClaimOfPausedPoolGetsNoJob(t *testing.T) {
	e := newEnv(t)
	in := e.start(Config{PollInterval: time.Hour, MaxWait: time.Minute})
	pool := e.pool("reserve-paused")

	jobs, errs := claimAsync(t, e, in, pool.ID, "pod-a")
	_, settle := reserve(t, in, pool.ID, e.org.ID.String())
	require.False(t, settle(store.Job{}, false, func() { t.Error("announced without a job") }))
	_, err := e.store.SetPoolStatus(t.Context(), store.PoolScope{OrgID: e.org.ID}, pool.ID, apiv1.PoolPaused)
	require.NoError(t, err)
	claim, settle := reserve(t, in, pool.ID, e.org.ID.String()) // woken, it popped nothing and waits idle again
	job := e.submitClaimed(pool.ID, claim)
	require.Equal(t, apiv1.JobQueued, job.Status, "a paused pool's job is inserted queued")
	require.True(t, settle(job, true, nil), "handed to the claim to claim")
	require.Nil(t, answer(t, jobs, errs), "a paused pool's claim gets no job")
	require.Equal(t, apiv1.JobQueued, e.job(job.ID).Status)
	require.Equal(t, int64(1), e.queueLen(pool.ID), "the id is on its list")
}
