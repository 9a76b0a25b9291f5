package store_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/store"
)

// splitFixture is a job claimed by a pod and split into three chunks and
// the whole-input task.
type splitFixture struct {
	s      *store.Store
	org    uuid.UUID
	parent store.Job
	tasks  []store.Job
	now    time.Time
}

func newSplit(t *testing.T, s *store.Store, org uuid.UUID) splitFixture {
	t.Helper()
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Millisecond)
	nj := urlJob(org)
	nj.Priority = 5
	j := createJob(t, s, nj)
	_, err := s.ClaimForWorker(ctx, j.ID, store.Worker{ID: "splitter", PoolID: store.DefaultPoolID, Lane: apiv1.LaneLive}, []byte("split-token"), now, now.Add(time.Minute))
	require.NoError(t, err)
	plan := store.Split{Whole: true, Media: json.RawMessage(`{"DurationSeconds": 30}`), Chunks: []store.ChunkRange{
		{Index: 0, Start: 0, End: 10, FirstSegment: 0},
		{Index: 1, Start: 10, End: 20, FirstSegment: 5},
		{Index: 2, Start: 20, End: 30, FirstSegment: 10},
	}}
	parent, tasks, err := s.SplitJob(ctx, j.ID, store.DefaultPoolID, []byte("split-token"), plan, now)
	require.NoError(t, err)
	return splitFixture{s: s, org: org, parent: parent, tasks: tasks, now: now}
}

// claim claims task as pod, with the pod's name as its claim token.
func (f splitFixture) claim(t *testing.T, task store.Job, pod string) {
	t.Helper()
	_, err := f.s.ClaimForWorker(t.Context(), task.ID, store.Worker{ID: pod, PoolID: store.DefaultPoolID, Lane: apiv1.LaneLive},
		[]byte(pod), f.now, f.now.Add(time.Minute))
	require.NoError(t, err)
}

// complete claims and completes task with outputs and usage, then
// advances its job as the coordinator does.
func (f splitFixture) complete(t *testing.T, task store.Job, outputs string, encodeSeconds float64) store.Advance {
	t.Helper()
	pod := "pod-" + task.ID.String()[:8]
	f.claim(t, task, pod)
	_, err := f.s.CompleteJob(t.Context(), task.ID, store.DefaultPoolID, []byte(pod), json.RawMessage(outputs),
		store.Usage{EncodeSeconds: encodeSeconds, OutputSeconds: 10}, f.now)
	require.NoError(t, err)
	adv, err := f.s.AdvanceParent(t.Context(), f.parent.ID, f.now)
	require.NoError(t, err)
	return adv
}

// TestSplitJob: a held job becomes its tasks (queued copies on its pool,
// lane and priority, each with its range and the probe), and waits on them
// running with no worker, claim or lease; the API sees the job only.
func TestSplitJob(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")
	f := newSplit(t, s, b.Org.ID)

	require.Len(t, f.tasks, 4)
	assert.Equal(t, store.JobRunning, f.parent.Status)
	assert.Nil(t, f.parent.WorkerID)
	assert.Nil(t, f.parent.LeaseExpiresAt, "no lease of its own: Stale Job Recovery leaves it alone")
	kinds := map[string]int{}
	for _, task := range f.tasks {
		kinds[task.Task]++
		assert.Equal(t, store.JobQueued, task.Status)
		require.NotNil(t, task.ParentID)
		assert.Equal(t, f.parent.ID, *task.ParentID)
		assert.Equal(t, f.parent.PoolID, task.PoolID)
		assert.Equal(t, f.parent.Lane, task.Lane)
		assert.Equal(t, 5, task.Priority)
		assert.Equal(t, f.parent.InputURL, task.InputURL)
		var data store.TaskData
		require.NoError(t, json.Unmarshal(task.TaskData, &data))
		assert.JSONEq(t, `{"DurationSeconds": 30}`, string(data.Media))
		if task.Task == store.TaskChunk {
			require.NotNil(t, data.Chunk)
			assert.InDelta(t, float64(data.Chunk.Index*10), data.Chunk.Start, 1e-9)
		}
	}
	assert.Equal(t, map[string]int{store.TaskChunk: 3, store.TaskWhole: 1}, kinds)
	assert.Zero(t, count(t, db, `SELECT count(*) FROM workers WHERE id = 'splitter' AND current_job_id IS NOT NULL`))

	// The former holder's claim is gone: no second split, no completion.
	_, _, err := s.SplitJob(ctx, f.parent.ID, store.DefaultPoolID, []byte("split-token"), store.Split{}, f.now)
	assert.ErrorIs(t, err, store.ErrClaimToken)
	_, err = s.CompleteJob(ctx, f.parent.ID, store.DefaultPoolID, []byte("split-token"), json.RawMessage(`[]`), store.Usage{}, f.now)
	assert.ErrorIs(t, err, store.ErrClaimToken)
	// A task is not split again.
	f.claim(t, f.tasks[0], "chunk-pod")
	_, _, err = s.SplitJob(ctx, f.tasks[0].ID, store.DefaultPoolID, []byte("chunk-pod"), store.Split{}, f.now)
	assert.ErrorIs(t, err, store.ErrNotSplittable)

	// The API lists and shows the job, never its tasks.
	listed, err := s.ListJobs(ctx, b.Org.ID, store.JobFilter{}, store.Page{})
	require.NoError(t, err)
	require.Len(t, listed, 1)
	assert.Equal(t, f.parent.ID, listed[0].ID)
	_, err = s.GetJob(ctx, b.Org.ID, f.tasks[1].ID)
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.CancelJob(ctx, b.Org.ID, f.tasks[1].ID)
	assert.ErrorIs(t, err, store.ErrNotFound)
	tasks, err := s.Tasks(ctx, b.Org.ID, f.parent.ID)
	require.NoError(t, err)
	require.Len(t, tasks, 4)
	assert.Equal(t, store.TaskWhole, tasks[3].Task, "chunks first, in order")
	other := bootstrap(t, s, "Other")
	tasks, err = s.Tasks(ctx, other.Org.ID, f.parent.ID)
	require.NoError(t, err)
	assert.Empty(t, tasks, "another organization sees no task of the job")
	events, err := s.ListJobEvents(ctx, b.Org.ID, f.parent.ID, 0, 100)
	require.NoError(t, err)
	assert.Contains(t, eventTypes(events), "job.split")
}

// TestSplitJobStitchesThenCompletes: the parts completing queue the stitch
// task once; its completion completes the job with its outputs and the
// sum of every task's usage, and the usage report counts one job.
func TestSplitJobStitchesThenCompletes(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")
	_, err := s.CreateWebhook(ctx, b.Org.ID, "https://acme.example/hooks", "", []string{"job.started", "job.completed", "job.failed"})
	require.NoError(t, err)
	f := newSplit(t, s, b.Org.ID)

	var stitch *store.Job
	for i, task := range f.tasks {
		adv := f.complete(t, task, `[]`, 2)
		if i < len(f.tasks)-1 {
			assert.Nil(t, adv.Stitch, "no stitch before every part is done")
			assert.InDelta(t, 0.95*float64(i+1)/4, adv.Parent.Progress, 1e-6, "progress is the share of parts done")
			continue
		}
		require.NotNil(t, adv.Stitch, "the last part queues the stitch task")
		stitch = adv.Stitch
	}
	assert.Equal(t, store.TaskStitch, stitch.Task)
	assert.Equal(t, store.JobQueued, stitch.Status)
	// Advancing again (a second replica, Stale Job Recovery) queues nothing more.
	var again store.Advance
	again, err = s.AdvanceParent(ctx, f.parent.ID, f.now)
	require.NoError(t, err)
	assert.Nil(t, again.Stitch)
	assert.Equal(t, 1, count(t, db, `SELECT count(*) FROM jobs WHERE parent_id = $1 AND task = 'stitch'`, f.parent.ID))
	stalled, err := s.StalledParents(ctx, 10)
	require.NoError(t, err)
	assert.NotContains(t, stalled, f.parent.ID, "a job whose stitch task is queued waits on it")

	outputs := `[{"name": "master.m3u8", "kind": "playlist", "key": "orgs/x/jobs/y/outputs/master.m3u8"}]`
	adv := f.complete(t, *stitch, outputs, 1)
	assert.Equal(t, store.JobCompleted, adv.Parent.Status)
	assert.InDelta(t, 1, adv.Parent.Progress, 1e-9)
	assert.JSONEq(t, outputs, string(adv.Parent.Outputs))
	var usage store.Usage
	require.NoError(t, json.Unmarshal(adv.Parent.Usage, &usage))
	assert.InDelta(t, 4*2+1, usage.EncodeSeconds, 1e-9, "every task's seconds")
	assert.InDelta(t, 5*10, usage.OutputSeconds, 1e-9)

	got, err := s.GetJob(ctx, b.Org.ID, f.parent.ID)
	require.NoError(t, err)
	assert.Equal(t, store.JobCompleted, got.Status)
	days, err := s.Usage(ctx, b.Org.ID, f.now.AddDate(0, 0, -1), f.now.AddDate(0, 0, 1))
	require.NoError(t, err)
	require.Len(t, days, 1)
	assert.EqualValues(t, 1, days[0].JobsCompleted, "one job, however many tasks")
	assert.InDelta(t, 4*2+1, days[0].EncodeSeconds, 1e-9, "the seconds are the tasks'")
	events, err := s.ListJobEvents(ctx, b.Org.ID, f.parent.ID, 0, 100)
	require.NoError(t, err)
	types := eventTypes(events)
	assert.Equal(t, []string{"job.queued", "job.started", "job.split"}, types[:3])
	assert.Equal(t, []string{"task.completed", "job.stitching", "task.started", "task.completed", "job.completed"}, types[len(types)-5:])
	assert.Equal(t, 5, countOf(types, "task.started"), "each part's start and the stitch task's")
	chunks := map[int]bool{}
	for _, e := range events {
		var d struct {
			Task   string     `json:"task"`
			TaskID *uuid.UUID `json:"task_id"`
			Chunk  *int       `json:"chunk"`
		}
		require.NoError(t, json.Unmarshal(e.Data, &d))
		assert.Equal(t, f.parent.ID, e.JobID, "every event is the job's")
		if e.Type == "task.started" {
			require.NotNil(t, d.TaskID, "a task's event names it")
			if d.Task == store.TaskChunk {
				require.NotNil(t, d.Chunk)
				chunks[*d.Chunk] = true
			}
		}
	}
	assert.Equal(t, map[int]bool{0: true, 1: true, 2: true}, chunks, "each chunk's start names its index")
	assert.Equal(t, 2, count(t, db, `SELECT count(*) FROM webhook_deliveries WHERE payload ->> 'job_id' = $1`, f.parent.ID.String()),
		"the job's own job.started and job.completed")
	assert.Zero(t, count(t, db, `SELECT count(*) FROM webhook_deliveries WHERE payload ->> 'job_id' <> $1`, f.parent.ID.String()),
		"no webhook delivery is about a task")
}

// TestSplitJobFailsWithATask: a task that fails for good fails the job with
// its reason and cancels every unfinished task; cancelling a split job
// cancels its tasks.
func TestSplitJobFailsWithATask(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")

	t.Run("failure", func(t *testing.T) {
		f := newSplit(t, s, b.Org.ID)
		f.complete(t, f.tasks[0], `[]`, 1)
		f.claim(t, f.tasks[2], "running-pod")
		f.claim(t, f.tasks[1], "failing-pod")
		failed, outcome, err := s.FailJob(ctx, f.tasks[1].ID, store.DefaultPoolID, []byte("failing-pod"), "the input is damaged", false, false,
			store.FailPolicy{Now: f.now, Backoff: func(int) time.Duration { return time.Second }})
		require.NoError(t, err)
		require.Equal(t, store.OutcomeFailed, outcome)
		require.Equal(t, store.JobFailed, failed.Status)
		adv, err := s.AdvanceParent(ctx, f.parent.ID, f.now)
		require.NoError(t, err)
		assert.Equal(t, store.JobFailed, adv.Parent.Status)
		assert.Equal(t, "chunk 1 failed: the input is damaged", *adv.Parent.Error)
		assert.Len(t, adv.Cancelled, 2, "the running chunk and the queued whole-input task")
		tasks, err := s.Tasks(ctx, b.Org.ID, f.parent.ID)
		require.NoError(t, err)
		statuses := map[string]string{}
		for _, task := range tasks {
			statuses[fmt.Sprint(task.Task, " ", task.ID == f.tasks[2].ID)] = task.Status
		}
		assert.Equal(t, store.JobCancelled, statuses["chunk true"])
		assert.Equal(t, store.JobCancelled, statuses["whole false"])
		// The running chunk's pod learns it at its heartbeat.
		_, cancelled, err := s.Heartbeat(ctx, f.tasks[2].ID, store.DefaultPoolID, []byte("running-pod"), 0.5, f.now, f.now.Add(time.Minute))
		require.NoError(t, err)
		assert.True(t, cancelled)
		// Finished is finished.
		adv, err = s.AdvanceParent(ctx, f.parent.ID, f.now)
		require.NoError(t, err)
		assert.Zero(t, adv.Parent.ID)
	})

	t.Run("cancel", func(t *testing.T) {
		f := newSplit(t, s, b.Org.ID)
		f.claim(t, f.tasks[0], "chunk-0-pod")
		cancelled, err := s.CancelJob(ctx, b.Org.ID, f.parent.ID)
		require.NoError(t, err)
		assert.Equal(t, store.JobCancelled, cancelled.Status)
		tasks, err := s.Tasks(ctx, b.Org.ID, f.parent.ID)
		require.NoError(t, err)
		for _, task := range tasks {
			assert.Equal(t, store.JobCancelled, task.Status, "task %s", task.Task)
		}
		_, err = s.CompleteJob(ctx, f.tasks[0].ID, store.DefaultPoolID, []byte("chunk-0-pod"), json.RawMessage(`[]`), store.Usage{}, f.now)
		var nr *store.NotRunningError
		assert.True(t, errors.As(err, &nr), "a cancelled task cannot complete: %v", err)
	})
}

// TestRetriedSplitJob: a failed split job owes the clean-up of its parts,
// which is taken once; a job its batch retries is queued again, keeps what
// it owes untaken (its files are its own again), and splits again, its old
// tasks making way for the new plan.
func TestRetriedSplitJob(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")
	f := newSplit(t, s, b.Org.ID)
	f.claim(t, f.tasks[0], "failing-pod")
	_, _, err := s.FailJob(ctx, f.tasks[0].ID, store.DefaultPoolID, []byte("failing-pod"), "the input is damaged", false, false,
		store.FailPolicy{Now: f.now, Backoff: func(int) time.Duration { return time.Second }})
	require.NoError(t, err)
	adv, err := s.AdvanceParent(ctx, f.parent.ID, f.now)
	require.NoError(t, err)
	require.Equal(t, store.JobFailed, adv.Parent.Status)

	// Retried (as RetryFailedBatch does) before the clean-up ran: the
	// sweep finds nothing to take.
	_, err = db.Exec(ctx, `UPDATE jobs SET status = 'queued', attempts = 0, error = NULL, finished_at = NULL WHERE id = $1`, f.parent.ID)
	require.NoError(t, err)
	took, err := s.TakePartsDrop(ctx, f.parent.ID)
	require.NoError(t, err)
	assert.False(t, took, "a job running again keeps its files")

	_, err = s.ClaimForWorker(ctx, f.parent.ID, store.Worker{ID: "splitter-2", PoolID: store.DefaultPoolID, Lane: apiv1.LaneLive}, []byte("split-token-2"), f.now, f.now.Add(time.Minute))
	require.NoError(t, err)
	plan := store.Split{Media: json.RawMessage(`{"DurationSeconds": 30}`), Chunks: []store.ChunkRange{
		{Index: 0, Start: 0, End: 16, FirstSegment: 0},
		{Index: 1, Start: 16, End: 30, FirstSegment: 8},
	}}
	_, tasks, err := s.SplitJob(ctx, f.parent.ID, store.DefaultPoolID, []byte("split-token-2"), plan, f.now)
	require.NoError(t, err, "a second split replaces the first one's finished tasks")
	require.Len(t, tasks, 2)
	listed, err := s.Tasks(ctx, b.Org.ID, f.parent.ID)
	require.NoError(t, err)
	require.Len(t, listed, 2, "only the new plan's tasks")

	// Failed again: the clean-up is owed, taken once, given back, taken.
	_, err = s.CancelJob(ctx, b.Org.ID, f.parent.ID)
	require.NoError(t, err)
	for i, want := range []bool{true, false} {
		took, err = s.TakePartsDrop(ctx, f.parent.ID)
		require.NoError(t, err)
		assert.Equal(t, want, took, "take %d", i)
	}
	require.NoError(t, s.ReturnPartsDrop(ctx, f.parent.ID))
	took, err = s.TakePartsDrop(ctx, f.parent.ID)
	require.NoError(t, err)
	assert.True(t, took, "given back, taken again")
}

// TestStalledParents: a split job whose tasks all finished but which was
// never advanced (its coordinator stopped in between) is found, and
// advancing it queues its stitch task.
func TestStalledParents(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")
	f := newSplit(t, s, b.Org.ID)
	for _, task := range f.tasks {
		pod := "pod-" + task.ID.String()[:8]
		f.claim(t, task, pod)
		_, err := s.CompleteJob(ctx, task.ID, store.DefaultPoolID, []byte(pod), json.RawMessage(`[]`), store.Usage{}, f.now)
		require.NoError(t, err)
	}
	stalled, err := s.StalledParents(ctx, 100)
	require.NoError(t, err)
	assert.Contains(t, stalled, f.parent.ID)
	adv, err := s.AdvanceParent(ctx, f.parent.ID, f.now)
	require.NoError(t, err)
	require.NotNil(t, adv.Stitch)
	stalled, err = s.StalledParents(ctx, 100)
	require.NoError(t, err)
	assert.NotContains(t, stalled, f.parent.ID)
}

func countOf(xs []string, x string) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}
