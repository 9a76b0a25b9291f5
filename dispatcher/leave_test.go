package dispatcher

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	"github.com/mpegflow/mpegflow/internal/store"
)

// TestLeave: a pod's goodbye takes its own worker offline at once (the
// fleet figures drop without waiting for the sweeper), a second goodbye or
// one from a pod never seen changes nothing, and another pool's credentials
// cannot take the worker offline. A claim afterwards brings it back.
func TestLeave(t *testing.T) {
	t.Parallel()
	tp := newTenantPools(t)
	ctx := t.Context()
	workerStatus := func(id string) string {
		t.Helper()
		ws, err := tp.e.store.ListWorkers(ctx, tp.orgB.ID, true)
		require.NoError(t, err)
		for _, w := range ws {
			if w.ID == id {
				return w.Status
			}
		}
		return "absent"
	}
	online := func(pool string) int {
		t.Helper()
		_, ws, err := tp.e.store.FleetCounts(ctx)
		require.NoError(t, err)
		return ws[pool][store.WorkerOnline]
	}
	leave := func(w *worker, pod string) error {
		_, err := w.client.Leave(w.ctx(ctx, ""), &coordinatorv1.LeaveRequest{Pod: pod})
		return err
	}

	for _, pod := range []string{"pod-a1", "pod-a2"} {
		job, err := tp.workA.claim(ctx, pod, 0)
		require.NoError(t, err)
		require.Nil(t, job, "nothing is queued: the claim registers the worker and answers nothing")
	}
	require.Equal(t, 2, online(tp.poolA.ID))

	require.NoError(t, leave(tp.workB, "pod-a1"), "leaving as someone else's worker is no error")
	require.Equal(t, store.WorkerOnline, workerStatus("pod-a1"), "pool B's token cannot take pool A's worker offline")

	require.NoError(t, leave(tp.workA, "pod-a1"))
	require.Equal(t, store.WorkerOffline, workerStatus("pod-a1"))
	require.Equal(t, 1, online(tp.poolA.ID), "the figures drop at once, no sweeper involved")
	require.NoError(t, leave(tp.workA, "pod-a1"), "leaving twice is no error")
	require.NoError(t, leave(tp.workA, "pod-never-seen"))
	require.Equal(t, "absent", workerStatus("pod-never-seen"), "a goodbye registers nothing")

	_, err := tp.workA.claim(ctx, "pod-a1", 0)
	require.NoError(t, err)
	require.Equal(t, store.WorkerOnline, workerStatus("pod-a1"), "a pod that claims again is online again")

	err = leave(tp.workA, "")
	require.Equal(t, codes.InvalidArgument, status.Code(err))
}
