package store_test

import (
	"encoding/json"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/validation"
)

func TestCreateJob(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")

	nj := urlJob(b.Org.ID)
	nj.Priority = 7
	nj.Metadata = json.RawMessage(`{"title": "trailer"}`)
	j := createJob(t, s, nj)
	assert.Equal(t, store.JobQueued, j.Status)
	assert.Equal(t, store.DefaultPoolID, j.PoolID)
	assert.Equal(t, apiv1.LaneLive, j.Lane)
	assert.Equal(t, 7, j.Priority)
	assert.Equal(t, 3, j.MaxAttempts)
	assert.Equal(t, *nj.InputURL, *j.InputURL)
	assert.JSONEq(t, string(testSpec), string(j.Spec))
	assert.JSONEq(t, `{"title": "trailer"}`, string(j.Metadata))
	assert.Nil(t, j.IdempotencyKey)

	got, err := s.GetJob(ctx, b.Org.ID, j.ID)
	require.NoError(t, err)
	assert.Equal(t, j.ID, got.ID)

	events, err := s.ListJobEvents(ctx, b.Org.ID, j.ID, 0, 0)
	require.NoError(t, err)
	require.Equal(t, []string{"job.queued"}, eventTypes(events))
	assert.JSONEq(t, `{"pool_id": "default", "lane": "live"}`, string(events[0].Data))
	// now() is the transaction's start time, so an event written in the
	// job's transaction carries exactly the job's created_at.
	assert.True(t, events[0].CreatedAt.Equal(j.CreatedAt),
		"job.queued is written in the job's transaction: event at %s, job at %s", events[0].CreatedAt, j.CreatedAt)

	// Another organization sees neither the job nor its events.
	other := bootstrap(t, s, "Other")
	_, err = s.GetJob(ctx, other.Org.ID, j.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.ListJobEvents(ctx, other.Org.ID, j.ID, 0, 0)
	require.ErrorIs(t, err, store.ErrNotFound)
	assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM jobs`))
}

func TestCreateJobIdempotency(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")

	key := "order-42"
	nj := urlJob(b.Org.ID)
	nj.IdempotencyKey = &key
	nj.RequestHash = []byte("hash-1")

	first, created, err := s.CreateJob(ctx, nj)
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, key, *first.IdempotencyKey)

	again, created, err := s.CreateJob(ctx, nj)
	require.NoError(t, err)
	assert.False(t, created, "a replay returns the existing job")
	assert.Equal(t, first.ID, again.ID)
	assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM jobs WHERE org_id = $1`, b.Org.ID))
	assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM job_events WHERE job_id = $1`, first.ID), "a replay writes no event")

	changed := nj
	changed.RequestHash = []byte("hash-2")
	changed.Priority = 50
	_, _, err = s.CreateJob(ctx, changed)
	require.ErrorIs(t, err, store.ErrConflict, "same key, different request")
	assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM jobs WHERE org_id = $1`, b.Org.ID))

	// Keys are per organization.
	other := bootstrap(t, s, "Other")
	theirs := nj
	theirs.OrgID = other.Org.ID
	j, created, err := s.CreateJob(ctx, theirs)
	require.NoError(t, err)
	assert.True(t, created)
	assert.NotEqual(t, first.ID, j.ID)

	// A replay after the job was cancelled still returns it.
	_, err = s.CancelJob(ctx, b.Org.ID, first.ID)
	require.NoError(t, err)
	again, created, err = s.CreateJob(ctx, nj)
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, first.ID, again.ID)
	assert.Equal(t, store.JobCancelled, again.Status)
}

func TestCreateJobIdempotencyConcurrent(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")

	key := "burst"
	nj := urlJob(b.Org.ID)
	nj.IdempotencyKey = &key
	nj.RequestHash = []byte("same request")

	const n = 10
	type result struct {
		id      uuid.UUID
		created bool
		err     error
	}
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			j, created, err := s.CreateJob(ctx, nj)
			results[i] = result{j.ID, created, err}
		})
	}
	close(start)
	wg.Wait()

	createdCount := 0
	for i, r := range results {
		require.NoError(t, r.err, "request %d", i)
		assert.Equal(t, results[0].id, r.id, "request %d got another job", i)
		if r.created {
			createdCount++
		}
	}
	assert.Equal(t, 1, createdCount, "exactly one request creates the job")
	assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM jobs WHERE org_id = $1`, b.Org.ID))
	assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM job_events WHERE org_id = $1`, b.Org.ID))
}

func TestCreateJobRefsOutsideOrg(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	a := bootstrap(t, s, "Acme")
	b := bootstrap(t, s, "Other")

	theirPool := createPool(t, s, b.Org.ID, "theirs")
	theirAsset := createAsset(t, s, b.Org.ID)
	theirWorkflow, err := s.CreateWorkflow(ctx, b.Org.ID, "hls", "", testSpec)
	require.NoError(t, err)
	ourAsset := createAsset(t, s, a.Org.ID)
	ourWorkflow, err := s.CreateWorkflow(ctx, a.Org.ID, "hls", "", testSpec)
	require.NoError(t, err)
	missing := uuid.New()

	tests := map[string]struct {
		pool     string
		asset    *uuid.UUID
		workflow *uuid.UUID
		fields   []string
	}{
		"everything theirs": {
			pool: theirPool.ID, asset: &theirAsset.ID, workflow: &theirWorkflow.ID,
			fields: []string{"pool", "input.asset_id", "workflow_id"},
		},
		"their pool":     {pool: theirPool.ID, asset: &ourAsset.ID, workflow: &ourWorkflow.ID, fields: []string{"pool"}},
		"their asset":    {pool: store.DefaultPoolID, asset: &theirAsset.ID, workflow: &ourWorkflow.ID, fields: []string{"input.asset_id"}},
		"their workflow": {pool: store.DefaultPoolID, asset: &ourAsset.ID, workflow: &theirWorkflow.ID, fields: []string{"workflow_id"}},
		"nothing exists": {
			pool: "nope", asset: &missing, workflow: &missing,
			fields: []string{"pool", "input.asset_id", "workflow_id"},
		},
	}
	t.Run("cases", func(t *testing.T) {
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				nj := urlJob(a.Org.ID)
				nj.PoolID, nj.InputURL, nj.InputAssetID, nj.WorkflowID, nj.Spec = tc.pool, nil, tc.asset, tc.workflow, nil
				_, created, err := s.CreateJob(ctx, nj)
				require.Error(t, err)
				assert.False(t, created)
				assert.Equal(t, tc.fields, fieldsOf(t, err))
			})
		}
	})
	assert.Equal(t, 0, count(t, db, `SELECT count(*) FROM jobs`), "no job is created for a bad reference")

	// The same submission with everything ours succeeds.
	nj := urlJob(a.Org.ID)
	nj.InputURL, nj.InputAssetID, nj.WorkflowID, nj.Spec = nil, &ourAsset.ID, &ourWorkflow.ID, nil
	j := createJob(t, s, nj)
	assert.Equal(t, ourAsset.ID, *j.InputAssetID)
}

func TestCreateJobCopiesWorkflowSpec(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")

	original := json.RawMessage(`{"renditions": [{"codec": "hevc", "height": 1080}], "packaging": "dash"}`)
	wf, err := s.CreateWorkflow(ctx, b.Org.ID, "uhd", "", original)
	require.NoError(t, err)

	nj := urlJob(b.Org.ID)
	nj.WorkflowID, nj.Spec = &wf.ID, nil
	j := createJob(t, s, nj)
	assert.JSONEq(t, string(original), string(j.Spec))
	assert.Equal(t, wf.ID, *j.WorkflowID)

	// The job keeps the spec it was created with.
	_, err = s.UpdateWorkflow(ctx, b.Org.ID, wf.ID, store.WorkflowPatch{Spec: testSpec})
	require.NoError(t, err)
	require.NoError(t, s.DeleteWorkflow(ctx, b.Org.ID, wf.ID))
	got, err := s.GetJob(ctx, b.Org.ID, j.ID)
	require.NoError(t, err)
	assert.JSONEq(t, string(original), string(got.Spec))
	assert.Nil(t, got.WorkflowID, "deleting the workflow clears the job's reference")
}

func TestCancelJob(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	a := bootstrap(t, s, "Acme")
	other := bootstrap(t, s, "Other")
	j := createJob(t, s, urlJob(a.Org.ID))

	_, err := s.CancelJob(ctx, other.Org.ID, j.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "another organization's job")
	_, err = s.CancelJob(ctx, a.Org.ID, uuid.New())
	require.ErrorIs(t, err, store.ErrNotFound)
	got, err := s.GetJob(ctx, a.Org.ID, j.ID)
	require.NoError(t, err)
	require.Equal(t, store.JobQueued, got.Status, "a refused cancel changes nothing")

	cancelled, err := s.CancelJob(ctx, a.Org.ID, j.ID)
	require.NoError(t, err)
	assert.Equal(t, store.JobCancelled, cancelled.Status)
	assert.NotNil(t, cancelled.FinishedAt)
	assert.True(t, cancelled.Terminal())

	events, err := s.ListJobEvents(ctx, a.Org.ID, j.ID, 0, 0)
	require.NoError(t, err)
	require.Equal(t, []string{"job.queued", "job.cancelled"}, eventTypes(events))
	assert.JSONEq(t, `{"previous_status": "queued"}`, string(events[1].Data))
	assert.True(t, events[1].CreatedAt.Equal(cancelled.UpdatedAt), "the event is written in the cancel's transaction")

	_, err = s.CancelJob(ctx, a.Org.ID, j.ID)
	require.ErrorIs(t, err, store.ErrConflict, "cancelling twice")
	assert.Equal(t, 2, count(t, db, `SELECT count(*) FROM job_events WHERE job_id = $1`, j.ID))

	// Later events are listed after the given id.
	later, err := s.ListJobEvents(ctx, a.Org.ID, j.ID, events[0].ID, 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"job.cancelled"}, eventTypes(later))
}

func TestCancelJobByStatus(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")

	tests := map[string]struct {
		status   string
		conflict bool
	}{
		"running":    {status: store.JobRunning},
		"retry_wait": {status: store.JobRetryWait},
		"completed":  {status: store.JobCompleted, conflict: true},
		"failed":     {status: store.JobFailed, conflict: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			j := createJob(t, s, urlJob(b.Org.ID))
			_, err := db.Exec(ctx, `UPDATE jobs SET status = $2, worker_id = 'w1',
				lease_expires_at = now() + interval '1 minute', run_after = now() WHERE id = $1`, j.ID, tc.status)
			require.NoError(t, err)

			got, err := s.CancelJob(ctx, b.Org.ID, j.ID)
			if tc.conflict {
				require.ErrorIs(t, err, store.ErrConflict)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, store.JobCancelled, got.Status)
			assert.Nil(t, got.LeaseExpiresAt)
			assert.Nil(t, got.RunAfter)
		})
	}
}

func TestListJobsKeysetPaging(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")
	other := bootstrap(t, s, "Other")

	var created []uuid.UUID
	for range 7 {
		created = append(created, createJob(t, s, urlJob(b.Org.ID)).ID)
		createJob(t, s, urlJob(other.Org.ID)) // interleaved, must never show
	}
	newestFirst := slices.Clone(created)
	slices.Reverse(newestFirst)

	var (
		seen   []uuid.UUID
		sizes  []int
		cursor string
	)
	for range 10 { // bounded: a paging bug must not loop forever
		page, err := store.ParsePage(3, cursor)
		require.NoError(t, err)
		jobs, err := s.ListJobs(ctx, b.Org.ID, store.JobFilter{}, page)
		require.NoError(t, err)
		sizes = append(sizes, len(jobs))
		for _, j := range jobs {
			seen = append(seen, j.ID)
		}
		if len(jobs) < 3 {
			break
		}
		last := jobs[len(jobs)-1]
		cursor = store.NextCursor(last.CreatedAt, last.ID)
	}
	assert.Equal(t, []int{3, 3, 1}, sizes)
	assert.Equal(t, newestFirst, seen, "every job once, newest first")

	_, err := store.ParsePage(3, "bm90IGEgY3Vyc29y")
	require.ErrorIs(t, err, store.ErrBadCursor)
	_, err = store.ParsePage(3, "%%%")
	require.ErrorIs(t, err, store.ErrBadCursor)
}

func TestListJobsFilters(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")
	pool := createPool(t, s, b.Org.ID, "dedicated")

	onPool := func() store.NewJob {
		nj := urlJob(b.Org.ID)
		nj.PoolID = pool.ID
		return nj
	}
	sharedQueued := createJob(t, s, urlJob(b.Org.ID))
	sharedCancelled := createJob(t, s, urlJob(b.Org.ID))
	poolQueued := createJob(t, s, onPool())
	poolCancelled := createJob(t, s, onPool())
	for _, id := range []uuid.UUID{sharedCancelled.ID, poolCancelled.ID} {
		_, err := s.CancelJob(ctx, b.Org.ID, id)
		require.NoError(t, err)
	}

	tests := map[string]struct {
		filter store.JobFilter
		want   []uuid.UUID // newest first
	}{
		"no filter":          {store.JobFilter{}, []uuid.UUID{poolCancelled.ID, poolQueued.ID, sharedCancelled.ID, sharedQueued.ID}},
		"queued":             {store.JobFilter{Status: store.JobQueued}, []uuid.UUID{poolQueued.ID, sharedQueued.ID}},
		"cancelled":          {store.JobFilter{Status: store.JobCancelled}, []uuid.UUID{poolCancelled.ID, sharedCancelled.ID}},
		"running":            {store.JobFilter{Status: store.JobRunning}, nil},
		"dedicated pool":     {store.JobFilter{PoolID: pool.ID}, []uuid.UUID{poolCancelled.ID, poolQueued.ID}},
		"shared pool":        {store.JobFilter{PoolID: store.DefaultPoolID}, []uuid.UUID{sharedCancelled.ID, sharedQueued.ID}},
		"pool and status":    {store.JobFilter{PoolID: pool.ID, Status: store.JobQueued}, []uuid.UUID{poolQueued.ID}},
		"unknown pool":       {store.JobFilter{PoolID: "nope"}, nil},
		"created before 3rd": {store.JobFilter{CreatedBefore: &poolQueued.CreatedAt}, []uuid.UUID{sharedCancelled.ID, sharedQueued.ID}},
		"created from 3rd":   {store.JobFilter{CreatedAfter: &poolQueued.CreatedAt}, []uuid.UUID{poolCancelled.ID, poolQueued.ID}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			jobs, err := s.ListJobs(ctx, b.Org.ID, tc.filter, store.Page{})
			require.NoError(t, err)
			var got []uuid.UUID
			for _, j := range jobs {
				got = append(got, j.ID)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestCreateJobs: one statement makes the new jobs of two organizations
// (with their job.queued events, in one transaction); what it cannot settle
// comes back LongWay, untouched, and CreateJob then answers each as alone:
// another organization's pool refused as a field error, an idempotency key
// used before replayed, one named twice in the batch replayed, one reused
// with another request refused, an asset input made. Nothing else is
// written.
func TestCreateJobs(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	acme, other := bootstrap(t, s, "Acme"), bootstrap(t, s, "Other")
	theirs := createPool(t, s, other.Org.ID, "theirs")
	used, twice := "order-1", "order-2"
	keyed := func(org uuid.UUID, key string, hash string) store.NewJob {
		nj := urlJob(org)
		nj.IdempotencyKey, nj.RequestHash = &key, []byte(hash)
		return nj
	}
	before, created, err := s.CreateJob(ctx, keyed(acme.Org.ID, used, "h1"))
	require.NoError(t, err)
	require.True(t, created)
	plain := urlJob(acme.Org.ID)
	plain.Priority = 9
	foreign := urlJob(acme.Org.ID)
	foreign.PoolID = theirs.ID
	asset := createAsset(t, s, acme.Org.ID)
	fromAsset := urlJob(acme.Org.ID)
	fromAsset.InputURL, fromAsset.InputAssetID = nil, &asset.ID

	batch := []store.NewJob{
		plain,                               // 0: made
		urlJob(other.Org.ID),                // 1: made, for the other organization
		foreign,                             // 2: another organization's pool
		keyed(acme.Org.ID, used, "h1"),      // 3: replays before
		keyed(acme.Org.ID, twice, "h2"),     // 4: made
		keyed(acme.Org.ID, twice, "h2"),     // 5: replays 4
		keyed(acme.Org.ID, used, "changed"), // 6: same key, another request
		fromAsset,                           // 7: made the long way
		keyed(other.Org.ID, used, "h1"),     // 8: keys are per organization: made
	}
	res, err := s.CreateJobs(ctx, batch)
	require.NoError(t, err)
	require.Len(t, res, 9)
	made := []int{0, 1, 4, 8}
	for _, i := range made {
		require.NoError(t, res[i].Err, "submission %d", i)
		assert.False(t, res[i].LongWay, "submission %d", i)
		assert.True(t, res[i].Created, "submission %d", i)
		assert.Equal(t, store.JobQueued, res[i].Job.Status, "submission %d", i)
		events, err := s.ListJobEvents(ctx, res[i].Job.OrgID, res[i].Job.ID, 0, 0)
		require.NoError(t, err)
		assert.Equal(t, []string{"job.queued"}, eventTypes(events), "submission %d", i)
		// The statement's rows share its transaction's now().
		assert.True(t, res[i].Job.CreatedAt.Equal(res[0].Job.CreatedAt), "submission %d made by the one statement", i)
	}
	assert.Equal(t, 9, res[0].Job.Priority)
	assert.Equal(t, other.Org.ID, res[1].Job.OrgID)
	assert.Equal(t, other.Org.ID, res[8].Job.OrgID)
	assert.Equal(t, 1+4, count(t, db, `SELECT count(*) FROM jobs`), "the statement made four jobs and nothing for the rest")
	for _, i := range []int{2, 3, 5, 6, 7} {
		assert.Equal(t, store.CreateResult{LongWay: true}, res[i], "submission %d", i)
	}

	long := func(i int) (store.Job, bool, error) { return s.CreateJob(ctx, batch[i]) }
	_, _, err = long(2)
	var fields validation.Errors
	require.ErrorAs(t, err, &fields, "another organization's pool is a field error")
	assert.Contains(t, err.Error(), "no pool")
	j, created, err := long(3)
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, before.ID, j.ID)
	j, created, err = long(5)
	require.NoError(t, err)
	assert.False(t, created, "a key named twice in one batch is made once")
	assert.Equal(t, res[4].Job.ID, j.ID)
	_, _, err = long(6)
	require.ErrorIs(t, err, store.ErrConflict)
	j, created, err = long(7)
	require.NoError(t, err)
	assert.True(t, created)
	assert.Equal(t, asset.ID, *j.InputAssetID)
	assert.Equal(t, 1+5, count(t, db, `SELECT count(*) FROM jobs`), "the first job and five new ones")
	assert.Equal(t, 1+5, count(t, db, `SELECT count(*) FROM job_events WHERE type = 'job.queued'`))
}
