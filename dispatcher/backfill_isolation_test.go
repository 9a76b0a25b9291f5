package dispatcher

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/backfill"
	"github.com/mpegflow/mpegflow/internal/store"
)

func (w *worker) claimLane(ctx context.Context, pod, lane string) (*coordinatorv1.Job, error) {
	resp, err := w.client.Claim(w.ctx(ctx, ""), &coordinatorv1.ClaimRequest{Pool: w.pool, Lane: lane, Pod: pod})
	if err != nil {
		return nil, err
	}
	return resp.GetJob(), nil
}

// backfillBatch expands a real batch of n manifest inputs into the default
// pool's backfill lane through the expander, as production does.
func (e *env) backfillBatch(n int) store.Batch {
	e.t.Helper()
	ctx := context.Background()
	a, err := e.store.CreateAsset(ctx, e.org.ID, "library.jsonl", "application/jsonl", nil, func(id uuid.UUID) string {
		return "orgs/" + e.org.ID.String() + "/assets/" + id.String() + "/source"
	})
	require.NoError(e.t, err)
	var buf bytes.Buffer
	for i := range n {
		fmt.Fprintf(&buf, "{\"input\":\"s3://%s/orgs/%s/library/%06d.mp4\"}\n", e.objects.Bucket(), e.org.ID, i)
	}
	require.NoError(e.t, e.objects.Put(ctx, a.ObjectKey, bytes.NewReader(buf.Bytes())))
	src, _ := json.Marshal(backfill.Source{ManifestAssetID: a.ID.String(), Format: backfill.FormatJSONL, OnError: backfill.OnErrorReject})
	b, _, err := e.store.CreateBatch(ctx, store.NewBatch{OrgID: e.org.ID, Key: "library", RequestHash: []byte("h"),
		PoolID: store.DefaultPoolID, Workflow: "mp4-720p", Spec: testSpec, Source: src, MaxAttempts: 3, Expected: int64(n)})
	require.NoError(e.t, err)
	x, err := backfill.NewExpander(backfill.Config{Storage: e.objects.Storage()}, e.store, e.queue, e.objects, slog.New(slog.DiscardHandler))
	require.NoError(e.t, err)
	created, err := x.ExpandOnce(ctx)
	require.NoError(e.t, err)
	require.Equal(e.t, n, created)
	return b
}

// TestBackfillNeverDelaysLiveClaims: with 100,000 backfill jobs queued on
// the same pool, live claims take what they took on an empty backfill lane
// (median of 15, generous bound: other packages share these two cores),
// a live worker never receives a backfill job and a backfill worker never
// receives a live one.
func TestBackfillNeverDelaysLiveClaims(t *testing.T) {
	t.Parallel()
	const (
		backfillJobs = 100_000
		samples      = 15
	)
	e := newEnv(t)
	in := e.start(Config{})
	live := e.worker(in.addr, store.DefaultPoolID)
	liveIDs := e.create(store.DefaultPoolID, 2*samples+1, 3)
	e.push(store.DefaultPoolID, liveIDs...)
	warm := live.mustClaim(t, "pod-warm") // connection up, caches warm
	require.NoError(t, live.complete(t.Context(), warm))

	measure := func(phase string) time.Duration {
		t.Helper()
		loadTests.Lock() // no load test on the same cores while measuring
		defer loadTests.Unlock()
		lat := make([]time.Duration, 0, samples)
		for i := range samples {
			start := time.Now()
			j, err := live.claimLane(t.Context(), fmt.Sprintf("pod-%s-%d", phase, i), apiv1.LaneLive)
			lat = append(lat, time.Since(start))
			require.NoError(t, err)
			require.NotNil(t, j, "%s: a live job is queued", phase)
			assert.Equal(t, apiv1.LaneLive, j.GetLane())
			require.NoError(t, live.complete(t.Context(), j))
		}
		slices.Sort(lat)
		t.Logf("live claim latency %s: min %s, median %s, max %s", phase, lat[0], lat[len(lat)/2], lat[len(lat)-1])
		return lat[len(lat)/2]
	}
	base := measure("empty-backfill-lane")

	start := time.Now()
	b := e.backfillBatch(backfillJobs)
	t.Logf("expanded %d backfill jobs in %s", backfillJobs, time.Since(start))
	n, err := e.queue.Len(t.Context(), store.DefaultPoolID, apiv1.LaneBackfill)
	require.NoError(t, err)
	require.EqualValues(t, backfillJobs, n)

	loaded := measure("100k-backfill-queued")
	assert.Less(t, loaded, 2*base+20*time.Millisecond, "live claims are not slowed by a queued backfill (base median %s)", base)

	// The live lane is empty now: a live worker gets nothing although
	// 100,000 backfill jobs wait, and a backfill worker gets one of them.
	j, err := live.claimLane(t.Context(), "pod-live-idle", apiv1.LaneLive)
	require.NoError(t, err)
	assert.Nil(t, j, "a live worker never takes a backfill job")
	e.push(store.DefaultPoolID, e.create(store.DefaultPoolID, 1, 3)...)
	bj, err := live.claimLane(t.Context(), "pod-backfill", apiv1.LaneBackfill)
	require.NoError(t, err)
	require.NotNil(t, bj)
	assert.Equal(t, apiv1.LaneBackfill, bj.GetLane())
	assert.Equal(t, b.ID.String(), bj.GetMetadata()["batch_id"])
	assert.NotContains(t, bj.GetInputUrl(), "s3://", "the encoder gets a presigned GET for the listed object")
	assert.EqualValues(t, 1, e.queueLen(store.DefaultPoolID), "a backfill worker never takes a live job")
}
