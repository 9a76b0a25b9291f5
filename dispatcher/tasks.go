package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	"github.com/mpegflow/mpegflow/internal/store"
)

// advance moves a split job on after one of its tasks completed or failed
// for good (store.AdvanceParent): the stitch task is pushed when the parts
// are done, the job completes with the stitch task, and fails with any
// task. A failure here leaves the job for Stale Job Recovery, which
// advances every split job waiting on nothing.
func (c *Coordinator) advance(ctx context.Context, task store.Job) {
	if task.ParentID == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	adv, err := c.store.AdvanceParent(ctx, *task.ParentID, c.cfg.Clock.Now())
	if err != nil {
		c.log.WarnContext(ctx, "split job not advanced after its task finished; stale job recovery will, check Postgres",
			slog.String("job_id", task.ParentID.String()), slog.String("task_id", task.ID.String()), slog.Any("error", err))
		return
	}
	c.afterAdvance(ctx, adv)
}

// afterAdvance pushes and announces what AdvanceParent did.
func (c *Coordinator) afterAdvance(ctx context.Context, adv store.Advance) {
	if adv.Stitch != nil {
		c.pushTasks(ctx, adv.Parent, *adv.Stitch)
		c.emit(ctx, adv.Parent, "job.stitching", map[string]any{"task_id": adv.Stitch.ID})
	}
	switch adv.Parent.Status {
	case store.JobCompleted:
		c.metrics.JobsTotal.WithLabelValues(store.JobCompleted).Inc()
		c.emit(ctx, adv.Parent, "job.completed", map[string]any{"usage": adv.Parent.Usage})
	case store.JobFailed:
		c.metrics.JobsTotal.WithLabelValues(store.JobFailed).Inc()
		c.emit(ctx, adv.Parent, "job.failed", map[string]any{"error": deref(adv.Parent.Error)})
	}
	if adv.Parent.Terminal() {
		c.dropParts(ctx, adv.Parent)
	}
}

// dropParts deletes the files the finished split job's parts uploaded
// under its tasks/ prefix: the stitch task published copies under the
// job's outputs/, and a failed job has no use for them. Best effort: what
// is left costs storage, not correctness.
func (c *Coordinator) dropParts(ctx context.Context, parent store.Job) {
	parts, err := c.store.TaskParts(ctx, parent.ID)
	var keys []string
	for _, p := range parts {
		var recs []outputRecord
		if err == nil {
			err = json.Unmarshal(p.Outputs, &recs)
		}
		for _, r := range recs {
			keys = append(keys, r.Key)
		}
	}
	if err == nil {
		err = c.objects.DeleteMany(ctx, keys)
	}
	if err != nil {
		c.log.WarnContext(ctx, "the files of a split job's parts were not all deleted; they stay under its tasks/ prefix",
			slog.String("job_id", parent.ID.String()), slog.Any("error", err))
	}
}

// AdvanceStalledParents advances split jobs that wait on nothing (all
// their tasks finished, the job still running): what a coordinator that
// stopped between a task's end and advance leaves behind.
func (s *Services) AdvanceStalledParents(ctx context.Context) (int, error) {
	ids, err := s.c.store.StalledParents(ctx, s.cfg.Batch)
	if err != nil {
		return 0, fmt.Errorf("stalled split jobs: %w", err)
	}
	for _, id := range ids {
		adv, err := s.c.store.AdvanceParent(ctx, id, s.c.cfg.Clock.Now())
		if err != nil {
			return 0, fmt.Errorf("advance split job %s: %w", id, err)
		}
		s.c.afterAdvance(ctx, adv)
	}
	return len(ids), nil
}

// taskView fills in what a claimed task's worker needs beyond a job's
// fields: its kind, its job, its chunk, the input's probe, and for the
// stitch task every part's files as presigned GETs.
func (c *Coordinator) taskView(ctx context.Context, j store.Job, out *coordinatorv1.Job) error {
	out.Task = j.Task
	if j.ParentID == nil {
		return nil
	}
	out.ParentId = j.ParentID.String()
	var data store.TaskData
	if err := json.Unmarshal(j.TaskData, &data); err != nil {
		return fmt.Errorf("task data of %s: %w", j.ID, err)
	}
	out.MediaInfoJson = data.Media
	out.Chunk = chunkRange(data.Chunk)
	if j.Task != store.TaskStitch {
		return nil
	}
	parts, err := c.store.TaskParts(ctx, *j.ParentID)
	if err != nil {
		return err
	}
	for _, p := range parts {
		var recs []outputRecord
		if err := json.Unmarshal(p.Outputs, &recs); err != nil {
			return fmt.Errorf("outputs of a task of %s: %w", *j.ParentID, err)
		}
		tp := &coordinatorv1.TaskPart{Task: p.Task, Chunk: chunkRange(p.Chunk)}
		for _, r := range recs {
			get, err := c.objects.PresignGet(ctx, r.Key)
			if err != nil {
				return fmt.Errorf("presign part %q: %w", r.Name, err)
			}
			tp.Files = append(tp.Files, &coordinatorv1.PartFile{Name: r.Name, Url: get.URL, Kind: r.Kind})
		}
		out.Parts = append(out.Parts, tp)
	}
	return nil
}

func chunkRange(c *store.ChunkRange) *coordinatorv1.ChunkRange {
	if c == nil {
		return nil
	}
	return &coordinatorv1.ChunkRange{Index: int32(c.Index), StartSeconds: c.Start, EndSeconds: c.End, FirstSegment: int32(c.FirstSegment)}
}
