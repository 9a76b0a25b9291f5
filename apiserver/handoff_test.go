package apiserver

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
)

// handoffRecorder stands in for the coordinator's waiting claims: it takes
// every offer while take is set (running the announcement, as a claim
// taking the job does) and records what it was offered.
type handoffRecorder struct {
	take    bool
	offered [][4]string // pool, lane, org, id
}

// Reserve finds no claim waiting: these tests hand jobs over after their
// statement (dispatcher's tests cover jobs inserted claimed).
func (h *handoffRecorder) Reserve(context.Context, string, string, string) (*store.JobClaim, func(store.Job, bool, func()) bool) {
	return nil, nil
}

func (h *handoffRecorder) Offer(pool, lane, org, id string, announce func()) bool {
	h.offered = append(h.offered, [4]string{pool, lane, org, id})
	if h.take && announce != nil {
		announce()
	}
	return h.take
}

// TestSubmissionHandedToWaitingClaim: a submitted job that a waiting claim
// takes is not pushed onto its lane's list, and its job.queued event is
// still published; one that no claim takes is pushed as before; a replayed
// submission (same Idempotency-Key) offers nothing.
func TestSubmissionHandedToWaitingClaim(t *testing.T) {
	f := newFixture(t)
	h := &handoffRecorder{take: true}
	f.srv.cfg.Handoff = h
	sub := f.rdb.Subscribe(t.Context(), f.queue.Keys().Events())
	t.Cleanup(func() { _ = sub.Close() })
	_, err := sub.Receive(t.Context()) // subscribed
	require.NoError(t, err)
	key := f.keys[auth.Owner]

	r := f.raw(t, "POST", "/v1/jobs", key, mustJSON(urlJob()), map[string]string{"Idempotency-Key": "handoff-1"})
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	var taken apiv1.Job
	r.json(t, &taken)
	require.Equal(t, [][4]string{{apiv1.DefaultPoolID, apiv1.LaneLive, f.orgA.ID.String(), taken.ID}}, h.offered)
	n, err := f.queue.Len(t.Context(), apiv1.DefaultPoolID, apiv1.LaneLive)
	require.NoError(t, err)
	require.Zero(t, n, "a job taken by a waiting claim is not pushed")
	select {
	case m := <-sub.Channel():
		got := slices.Collect(queue.Events(m.Payload))
		require.Len(t, got, 1, "one event: %s", m.Payload)
		var e events.Event
		require.NoError(t, json.Unmarshal([]byte(got[0]), &e))
		require.Equal(t, "job.queued", e.Type)
		require.Equal(t, taken.ID, e.JobID.String())
	case <-time.After(10 * time.Second):
		t.Fatal("no job.queued event for the handed job")
	}

	r = f.raw(t, "POST", "/v1/jobs", key, mustJSON(urlJob()), map[string]string{"Idempotency-Key": "handoff-1"})
	require.Equal(t, http.StatusOK, r.Status, "replayed")
	require.Len(t, h.offered, 1, "a replay offers nothing")

	h.take = false
	pushed := f.submitJob(t, key, urlJob())
	require.Len(t, h.offered, 2)
	n, err = f.queue.Len(t.Context(), apiv1.DefaultPoolID, apiv1.LaneLive)
	require.NoError(t, err)
	require.Equal(t, int64(1), n, "a job no claim took is pushed")
	require.NotEqual(t, taken.ID, pushed.ID)
}
