package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/store"
)

// TestPoolEventsBecomeDeliveries: pausing and resuming a dedicated pool
// queues pool.paused / pool.resumed for its organization's subscribed
// webhooks only, once per change (a repeated pause queues nothing); the
// shared pool's pause reaches every organization's subscribed webhooks.
func TestPoolEventsBecomeDeliveries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	a, b := bootstrap(t, s, "Alpha"), bootstrap(t, s, "Beta")
	hookA, err := s.CreateWebhook(ctx, a.Org.ID, "https://a.example/h", "", []string{"pool.paused", "pool.resumed"})
	require.NoError(t, err)
	hookA2, err := s.CreateWebhook(ctx, a.Org.ID, "https://a.example/jobs", "", []string{"job.completed"})
	require.NoError(t, err)
	hookB, err := s.CreateWebhook(ctx, b.Org.ID, "https://b.example/h", "", []string{"pool.paused"})
	require.NoError(t, err)
	pool := createPool(t, s, a.Org.ID, "dedicated")
	scA := store.PoolScope{OrgID: a.Org.ID}

	for _, status := range []string{"paused", "paused", "active"} {
		_, err := s.SetPoolStatus(ctx, scA, pool.ID, status)
		require.NoError(t, err)
	}
	types := func(orgID, hookID [16]byte) []string {
		ds, err := s.ListDeliveries(ctx, orgID, hookID, "", store.Page{Limit: 50})
		require.NoError(t, err)
		var out []string
		for _, d := range ds {
			out = append(out, d.EventType)
		}
		return out
	}
	assert.Equal(t, []string{"pool.resumed", "pool.paused"}, types(a.Org.ID, hookA.ID), "one per change, newest first")
	assert.Empty(t, types(a.Org.ID, hookA2.ID), "not subscribed")
	assert.Empty(t, types(b.Org.ID, hookB.ID), "another organization's pool")

	// No change, no event: the event commits with the change it describes.
	_, err = s.SetPoolStatus(ctx, store.PoolScope{OrgID: b.Org.ID}, pool.ID, "paused")
	require.ErrorIs(t, err, store.ErrNotFound)
	assert.Len(t, types(a.Org.ID, hookA.ID), 2)

	_, err = s.SetPoolStatus(ctx, store.PoolScope{OrgID: a.Org.ID, Shared: true}, store.DefaultPoolID, "paused")
	require.NoError(t, err)
	assert.Equal(t, []string{"pool.paused"}, types(b.Org.ID, hookB.ID), "the shared pool concerns everyone")
	ds, err := s.ListDeliveries(ctx, b.Org.ID, hookB.ID, "", store.Page{Limit: 1})
	require.NoError(t, err)
	var payload struct {
		Type   string `json:"type"`
		OrgID  string `json:"org_id"`
		PoolID string `json:"pool_id"`
		Data   struct {
			Shared bool `json:"shared"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(ds[0].Payload, &payload))
	assert.Equal(t, "pool.paused", payload.Type)
	assert.Equal(t, b.Org.ID.String(), payload.OrgID, "each organization's copy names that organization")
	assert.Equal(t, store.DefaultPoolID, payload.PoolID)
	assert.True(t, payload.Data.Shared)
}

// TestJobEventDeliveriesCarryTheJob: a job event's delivery is written in
// the job's own transaction, only for enabled subscribed webhooks of its
// organization, with the job as it stands after the change.
func TestJobEventDeliveriesCarryTheJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	a, b := bootstrap(t, s, "Alpha"), bootstrap(t, s, "Beta")
	hook, err := s.CreateWebhook(ctx, a.Org.ID, "https://a.example/h", "", []string{"job.queued", "job.cancelled"})
	require.NoError(t, err)
	off, err := s.CreateWebhook(ctx, a.Org.ID, "https://a.example/off", "", []string{"job.queued"})
	require.NoError(t, err)
	no := false
	_, err = s.UpdateWebhook(ctx, a.Org.ID, off.ID, store.WebhookPatch{Enabled: &no})
	require.NoError(t, err)
	other, err := s.CreateWebhook(ctx, b.Org.ID, "https://b.example/h", "", []string{"job.queued"})
	require.NoError(t, err)

	nj := urlJob(a.Org.ID)
	nj.Metadata = json.RawMessage(`{"title":"Episode 4"}`)
	j := createJob(t, s, nj)
	_, err = s.CancelJob(ctx, a.Org.ID, j.ID)
	require.NoError(t, err)

	ds, err := s.ListDeliveries(ctx, a.Org.ID, hook.ID, "", store.Page{Limit: 10})
	require.NoError(t, err)
	require.Len(t, ds, 2)
	var ev struct {
		ID    string `json:"id"`
		Type  string `json:"type"`
		JobID string `json:"job_id"`
		Job   struct {
			Status   string            `json:"status"`
			Metadata map[string]string `json:"metadata"`
		} `json:"job"`
	}
	require.NoError(t, json.Unmarshal(ds[0].Payload, &ev))
	assert.Equal(t, "job.cancelled", ev.Type)
	assert.Equal(t, ds[0].EventID, ev.ID)
	assert.Equal(t, j.ID.String(), ev.JobID)
	assert.Equal(t, "cancelled", ev.Job.Status, "the job after the change")
	assert.Equal(t, "Episode 4", ev.Job.Metadata["title"])
	assert.NotContains(t, string(ds[0].Payload), "claim_token", "internal columns stay inside")
	assert.NotContains(t, string(ds[0].Payload), "request_hash")

	for _, h := range []struct{ org, id [16]byte }{{a.Org.ID, off.ID}, {b.Org.ID, other.ID}} {
		ds, err := s.ListDeliveries(ctx, h.org, h.id, "", store.Page{Limit: 10})
		require.NoError(t, err)
		assert.Empty(t, ds, "disabled, or another organization's")
	}
}

// TestPruneDeliveries: finished deliveries older than the cutoff go; newer
// ones and pending ones (however old) stay.
func TestPruneDeliveries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, db := newStore(t)
	a := bootstrap(t, s, "Alpha")
	hook, err := s.CreateWebhook(ctx, a.Org.ID, "https://a.example/h", "", []string{"job.queued"})
	require.NoError(t, err)
	for range 4 {
		createJob(t, s, urlJob(a.Org.ID))
	}
	ds, err := s.ListDeliveries(ctx, a.Org.ID, hook.ID, "", store.Page{Limit: 10})
	require.NoError(t, err)
	require.Len(t, ds, 4)
	// old delivered, old failed, old pending, new delivered
	set := []struct{ status, age string }{{"delivered", "40 days"}, {"failed", "31 days"}, {"pending", "90 days"}, {"delivered", "1 day"}}
	for i, st := range set {
		_, err := db.Exec(ctx, `UPDATE webhook_deliveries SET status = $2, created_at = now() - $3::interval WHERE id = $1`, ds[i].ID, st.status, st.age)
		require.NoError(t, err)
	}
	n, err := s.PruneDeliveries(ctx, time.Now().Add(-30*24*time.Hour), 100)
	require.NoError(t, err)
	assert.EqualValues(t, 2, n)
	left, err := s.ListDeliveries(ctx, a.Org.ID, hook.ID, "", store.Page{Limit: 10})
	require.NoError(t, err)
	var ids []string
	for _, d := range left {
		ids = append(ids, d.ID.String())
	}
	assert.ElementsMatch(t, []string{ds[2].ID.String(), ds[3].ID.String()}, ids)
}

// TestClaimAndCompletionDeliveries: the claim and completion statements,
// alone and in batches, queue job.started and job.completed for the
// subscribed webhooks of the job's organization only, each delivery the
// event as its history keeps it (same data, same date) with the job after
// the change.
func TestClaimAndCompletionDeliveries(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	a, b := bootstrap(t, s, "Alpha"), bootstrap(t, s, "Beta")
	hook, err := s.CreateWebhook(ctx, a.Org.ID, "https://a.example/h", "", []string{"job.started", "job.completed"})
	require.NoError(t, err)
	other, err := s.CreateWebhook(ctx, b.Org.ID, "https://b.example/h", "", []string{"job.started", "job.completed"})
	require.NoError(t, err)

	now := time.Now().UTC().Truncate(time.Millisecond)
	claim := func(j store.Job, pod string) store.ClaimRequest {
		return store.ClaimRequest{JobID: j.ID, Worker: store.Worker{ID: pod, PoolID: store.DefaultPoolID, Lane: apiv1.LaneLive},
			TokenHash: []byte("token-" + pod), Now: now, LeaseUntil: now.Add(time.Minute)}
	}
	done := func(r store.ClaimRequest) store.CompleteRequest {
		return store.CompleteRequest{JobID: r.JobID, PoolID: store.DefaultPoolID, TokenHash: r.TokenHash,
			Outputs: json.RawMessage(`{"files":[]}`), Usage: store.Usage{EncodeSeconds: 3}, Now: now}
	}
	for _, size := range []int{1, 3} { // alone, and a batch
		var reqs []store.ClaimRequest
		for i := range size {
			reqs = append(reqs, claim(createJob(t, s, urlJob(a.Org.ID)), fmt.Sprintf("pod-%d-%d", size, i)))
		}
		res, err := s.ClaimBatch(ctx, reqs)
		require.NoError(t, err)
		var dones []store.CompleteRequest
		for i, r := range res {
			require.NoError(t, r.Err, "claim %d of %d", i, size)
			dones = append(dones, done(reqs[i]))
		}
		completed, err := s.CompleteBatch(ctx, dones)
		require.NoError(t, err)
		for i, r := range completed {
			require.NoError(t, r.Err, "completion %d of %d", i, size)
		}
	}

	// Each of the four jobs has one delivery an event, and it is the event.
	var matched, all int
	require.NoError(t, db.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE e.id IS NOT NULL), count(*)
		FROM webhook_deliveries d
		LEFT JOIN job_events e ON e.job_id = (d.payload->>'job_id')::uuid AND e.type = d.event_type
			AND e.data = d.payload->'data' AND e.created_at = (d.payload->>'at')::timestamptz
			AND d.payload->>'id' = d.event_id AND d.payload->'job'->>'status' = CASE e.type WHEN 'job.started' THEN 'running' ELSE 'completed' END
		WHERE d.webhook_id = $1`, hook.ID).Scan(&matched, &all))
	assert.Equal(t, 8, all, "job.started and job.completed for each of four jobs")
	assert.Equal(t, all, matched, "each delivery carries its event, its date and the job after the change")
	assert.Equal(t, 8, count(t, db, `SELECT count(DISTINCT event_id) FROM webhook_deliveries WHERE webhook_id = $1`, hook.ID), "an event id each")
	assert.Zero(t, count(t, db, `SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1`, other.ID), "another organization's webhook")
}
