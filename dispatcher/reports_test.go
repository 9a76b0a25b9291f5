package dispatcher

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	"github.com/mpegflow/mpegflow/internal/store"
)

// reportOn sends req, the report of the job whose claim token is token,
// on stream and reads its answers: one message, or two when its next
// claim asked a wait that the first message did not settle.
func reportOn(stream coordinatorv1.Coordinator_ReportsClient, token string, req *coordinatorv1.CompleteRequest) ([]*coordinatorv1.CompleteResponse, error) {
	first, err := reportOnce(stream, token, req)
	if err != nil {
		return nil, err
	}
	msgs := []*coordinatorv1.CompleteResponse{first}
	if req.GetNext().GetWaitMs() == 0 || first.GetNext().GetJob() != nil || first.GetNextError() != "" {
		return msgs, nil
	}
	second, err := stream.Recv()
	if err != nil {
		return msgs, err
	}
	return append(msgs, second), nil
}

// reportAlone makes one report on a stream of its own, with whatever
// metadata ctx carries, and ends the stream: the report's answers, and
// the stream's error.
func reportAlone(ctx context.Context, client coordinatorv1.CoordinatorClient, token string, req *coordinatorv1.CompleteRequest) ([]*coordinatorv1.CompleteResponse, error) {
	stream, err := client.Reports(ctx)
	if err != nil {
		return nil, err
	}
	msgs, err := reportOn(stream, token, req)
	if err != nil {
		return msgs, err
	}
	if err := stream.CloseSend(); err != nil {
		return msgs, err
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		return msgs, err
	}
	return msgs, nil
}

// TestReportsOnOneStream: a pod reports three jobs on one stream, each
// answered as CompleteThenClaim answers: the first waits for its next job
// (two messages), the second finds its next queued (one message), the
// last claims nothing. Each report counts as a call of Reports.
func TestReportsOnOneStream(t *testing.T) {
	r := newNextRig(t, "reports", 3)
	r.e.push(r.pool, r.ids[0])
	held := r.w.mustClaim(t, "pod-a")
	stream, err := r.w.client.Reports(r.w.ctx(t.Context(), ""))
	require.NoError(t, err)
	next := func() *coordinatorv1.ClaimRequest {
		return &coordinatorv1.ClaimRequest{Pool: r.pool, Pod: "pod-a", WaitMs: 30_000}
	}

	first, err := reportOnce(stream, held.GetClaimToken(), &coordinatorv1.CompleteRequest{JobId: held.GetId(), Next: next()})
	require.NoError(t, err)
	assert.Nil(t, first.GetNext().GetJob(), "nothing queued while the completion committed")
	assert.Equal(t, store.JobCompleted, r.e.job(r.ids[0]).Status, "the first message answers the completion, committed")
	r.e.push(r.pool, r.ids[1])
	second, err := stream.Recv()
	require.NoError(t, err)
	held = second.GetNext().GetJob()
	require.NotNil(t, held, "the job pushed while the report waited: %v", second)
	assert.Equal(t, r.ids[1].String(), held.GetId())

	r.e.push(r.pool, r.ids[2])
	msgs, err := reportOn(stream, held.GetClaimToken(), &coordinatorv1.CompleteRequest{JobId: held.GetId(), Next: next()})
	require.NoError(t, err)
	require.Len(t, msgs, 1, "the next job was queued: it comes with the completion's answer")
	held = msgs[0].GetNext().GetJob()
	require.Equal(t, r.ids[2].String(), held.GetId())

	msgs, err = reportOn(stream, held.GetClaimToken(), &coordinatorv1.CompleteRequest{JobId: held.GetId()})
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	assert.Nil(t, msgs[0].GetNext(), "no next claim asked")
	require.NoError(t, stream.CloseSend())
	_, err = stream.Recv()
	require.ErrorIs(t, err, io.EOF, "the pod ended the stream: so does the coordinator, well")

	for _, id := range r.ids {
		assert.Equal(t, store.JobCompleted, r.e.job(id).Status, "%s", id)
	}
	reg := r.in.metrics.Registry
	assert.Equal(t, 3.0, mustMetric(t, reg, "mpegflow_grpc_requests_total", map[string]string{"method": "Reports"}), "a call counted a report")
	n, _ := histogramOf(t, reg, "mpegflow_grpc_request_duration_seconds", map[string]string{"method": "Reports"})
	assert.Equal(t, uint64(3), n, "a report timed as a call, not the stream")
	assert.Zero(t, mustMetric(t, reg, "mpegflow_grpc_requests_total", map[string]string{"method": "CompleteThenClaim"}))
}

// TestReportsCarryTheirClaimToken: a report's claim token is the one in
// its message: a valid one in the stream's metadata does not stand in for
// a message without one, and a report naming another job's token is
// refused, which ends the stream; the job stays held, unchanged.
func TestReportsCarryTheirClaimToken(t *testing.T) {
	r := newNextRig(t, "reports-token", 2)
	r.e.push(r.pool, r.ids[0], r.ids[1])
	a, b := r.w.mustClaim(t, "pod-a"), r.w.mustClaim(t, "pod-b")
	before := r.e.snapshot(r.ids[0], r.pool)

	_, err := reportAlone(r.w.ctx(t.Context(), a.GetClaimToken()), r.w.client, "", &coordinatorv1.CompleteRequest{JobId: a.GetId()})
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	assert.Equal(t, before, r.e.snapshot(r.ids[0], r.pool), "nothing changed")

	stream, err := r.w.client.Reports(r.w.ctx(t.Context(), ""))
	require.NoError(t, err)
	_, err = reportOn(stream, b.GetClaimToken(), &coordinatorv1.CompleteRequest{JobId: a.GetId()})
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "pod-b's token on pod-a's job: %v", err)
	_, err = reportOn(stream, a.GetClaimToken(), &coordinatorv1.CompleteRequest{JobId: a.GetId()})
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "the refusal ended the stream: %v", err)
	assert.Equal(t, before, r.e.snapshot(r.ids[0], r.pool), "nothing changed")

	msgs, err := reportAlone(r.w.ctx(t.Context(), ""), r.w.client, a.GetClaimToken(), &coordinatorv1.CompleteRequest{JobId: a.GetId()})
	require.NoError(t, err, "the holder reports on a new stream")
	require.Len(t, msgs, 1)
	assert.Equal(t, store.JobCompleted, r.e.job(r.ids[0]).Status)
	assert.Equal(t, store.JobRunning, r.e.job(r.ids[1]).Status, "pod-b's job untouched")
}

// TestReportsCancelledWhileWaiting: a pod that ends its stream while its
// report waits for the next job (SIGTERM) has its completion recorded and
// takes nothing: a job pushed after it left goes to another pod.
func TestReportsCancelledWhileWaiting(t *testing.T) {
	r := newNextRig(t, "reports-gone", 2)
	r.e.push(r.pool, r.ids[0])
	held := r.w.mustClaim(t, "pod-a")
	ctx, cancel := context.WithCancel(t.Context())
	stream, err := r.w.client.Reports(r.w.ctx(ctx, ""))
	require.NoError(t, err)
	first, err := reportOnce(stream, held.GetClaimToken(), &coordinatorv1.CompleteRequest{
		JobId: held.GetId(), Next: &coordinatorv1.ClaimRequest{Pool: r.pool, Pod: "pod-a", WaitMs: 30_000},
	})
	require.NoError(t, err)
	require.Nil(t, first.GetNext().GetJob())
	require.Eventually(t, func() bool { return r.in.coord.wakeups.waiters(r.laneKey) == 1 }, 10*time.Second, 5*time.Millisecond,
		"the report's claim waits on the lane")
	cancel()
	_, err = stream.Recv()
	require.Equal(t, codes.Canceled, status.Code(err), "%v", err)

	r.goneAfterItsCompletion(t)
}

// TestStopEndsReportStreams: a coordinator that stops (a rolling update)
// does not wait on its pods' report streams: one between two reports ends
// at once with Unavailable, one whose report waits for the next job has
// that wait end as a Claim's does (Unavailable, the completion standing).
// The stop would otherwise hold for the claims' hour-long wait.
func TestStopEndsReportStreams(t *testing.T) {
	e := newEnv(t)
	c, addr, stop, served := e.stoppable()
	w := e.worker(addr, store.DefaultPoolID)
	ids := e.submit(store.DefaultPoolID, 2)
	idle, waiting := w.mustClaim(t, "pod-idle"), w.mustClaim(t, "pod-waiting")

	streams, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	idleStream, err := w.client.Reports(w.ctx(streams, ""))
	require.NoError(t, err)
	msgs, err := reportOn(idleStream, idle.GetClaimToken(), &coordinatorv1.CompleteRequest{JobId: idle.GetId()})
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	waitingStream, err := w.client.Reports(w.ctx(streams, ""))
	require.NoError(t, err)
	first, err := reportOnce(waitingStream, waiting.GetClaimToken(), &coordinatorv1.CompleteRequest{
		JobId: waiting.GetId(), Next: &coordinatorv1.ClaimRequest{Pool: store.DefaultPoolID, Pod: "pod-waiting", WaitMs: 3_600_000},
	})
	require.NoError(t, err)
	require.Nil(t, first.GetNext().GetJob())
	laneKey := e.queue.Keys().Queue(store.DefaultPoolID, "live")
	require.Eventually(t, func() bool { return c.wakeups.waiters(laneKey) == 1 }, 10*time.Second, 5*time.Millisecond,
		"the report's claim waits on the lane")

	stop()
	_, err = idleStream.Recv()
	require.Equal(t, codes.Unavailable, status.Code(err), "the stream between reports: %v", err)
	_, err = waitingStream.Recv()
	require.Equal(t, codes.Unavailable, status.Code(err), "the report waiting for its next job: %v", err)
	require.NoError(t, <-served)
	for _, id := range ids {
		assert.Equal(t, store.JobCompleted, e.job(id).Status, "%s: the completions stand", id)
	}
}

// TestReportGate: a gate closed between reports lets none begin; one
// closed during a report lets it end, and none follow.
func TestReportGate(t *testing.T) {
	t.Parallel()
	idle := &reportGate{}
	require.True(t, idle.begin())
	require.True(t, idle.end())
	assert.True(t, idle.close(), "closed between reports")
	assert.False(t, idle.begin(), "no report begins once closed")

	busy := &reportGate{}
	require.True(t, busy.begin())
	assert.False(t, busy.close(), "closed during a report")
	assert.False(t, busy.end(), "the report ends; none follows")
}
