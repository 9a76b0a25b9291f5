package dispatcher

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	"github.com/mpegflow/mpegflow/internal/store"
)

func TestClaimHeartbeatComplete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := e.start(Config{})
	w := e.worker(in.addr, "default")
	ids := e.submit("default", 1)

	job, err := w.claim(t.Context(), "pod-1", 0)
	require.NoError(t, err)
	require.NotNil(t, job)
	assert.Equal(t, ids[0].String(), job.GetId())
	assert.Equal(t, "https://media.example.com/in.mp4", job.GetInputUrl())
	assert.EqualValues(t, 1, job.GetAttempt())
	assert.Equal(t, store.JobRunning, e.job(ids[0]).Status)

	hb, err := w.client.Heartbeat(w.ctx(t.Context(), job.GetClaimToken()), &coordinatorv1.HeartbeatRequest{JobId: job.GetId(), Progress: 0.5})
	require.NoError(t, err)
	assert.False(t, hb.GetCancel())
	assert.InDelta(t, 0.5, e.job(ids[0]).Progress, 0.001)

	_, err = w.client.Complete(w.ctx(t.Context(), job.GetClaimToken()), &coordinatorv1.CompleteRequest{JobId: job.GetId(), Usage: &coordinatorv1.Usage{EncodeSeconds: 2, OutputSeconds: 60}})
	require.NoError(t, err)
	done := e.job(ids[0])
	assert.Equal(t, store.JobCompleted, done.Status)

	none, err := w.claim(t.Context(), "pod-1", 0)
	require.NoError(t, err)
	assert.Nil(t, none, "queue is empty")
}
