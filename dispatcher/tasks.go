package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"

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
		c.dropParts(ctx, adv.Parent, adv.Parent.Status == store.JobCompleted)
	}
}

// rollUpProgress moves task's split job's progress on from its parts'
// heartbeats and announces it as the job's own job.progress, so a client
// watching the job sees it advance while its chunks encode, not only when
// one completes. Best effort: the next heartbeat or completion sets it.
func (c *Coordinator) rollUpProgress(ctx context.Context, task store.Job) {
	if task.Task == store.TaskStitch {
		return
	}
	p, ok, err := c.store.RollUpProgress(ctx, *task.ParentID, c.cfg.Clock.Now())
	if err != nil {
		c.log.WarnContext(ctx, "split job's progress not rolled up; its next heartbeat will", slog.String("job_id", task.ParentID.String()), slog.Any("error", err))
		return
	}
	if ok {
		parent := store.Job{ID: *task.ParentID, OrgID: task.OrgID, PoolID: task.PoolID}
		c.emit(ctx, parent, "job.progress", map[string]any{"progress": p})
	}
}

// partsPrefixes are the key prefixes of the files a split job's tasks
// wrote that a finished job has no use for: the parts' own files under
// its tasks/ prefix, and, unless the job completed, its outputs/ prefix
// (where chunks write their segments at their final keys, and where a
// failed stitch task may have published some files).
func partsPrefixes(job store.Job) []string {
	base := fmt.Sprintf("orgs/%s/jobs/%s/", job.OrgID, job.ID)
	if job.Status == store.JobCompleted {
		return []string{base + "tasks/"}
	}
	return []string{base + "tasks/", base + "outputs/"}
}

// dropParts deletes the files of the finished split job's parts that it
// has no use for (partsPrefixes). When final it first takes the job's
// clean-up debt (store.TakePartsDrop: only while the job is still
// finished, so a job retried meanwhile keeps its files), and gives it back
// if a delete fails. A completed job's clean-up is final at once: every
// task is done, nothing more is uploaded. A failed or cancelled job's
// tasks may still have pods uploading with URLs presigned before the end,
// so those are deleted now and again, finally, by DropSplitParts once such
// URLs have expired. Best effort: what is left costs storage, not
// correctness, and the recovery loop retries.
func (c *Coordinator) dropParts(ctx context.Context, job store.Job, final bool) {
	log := c.log.With(slog.String("job_id", job.ID.String()))
	if final {
		took, err := c.store.TakePartsDrop(ctx, job.ID)
		if err != nil || !took {
			if err != nil {
				log.WarnContext(ctx, "split job's parts not dropped; the recovery loop tries again", slog.Any("error", err))
			}
			return
		}
	}
	n := 0
	for _, prefix := range partsPrefixes(job) {
		deleted, err := c.objects.DeletePrefix(ctx, prefix)
		n += deleted
		if err != nil {
			log.WarnContext(ctx, "the files of a split job's parts were not all deleted; the recovery loop tries again",
				slog.String("prefix", prefix), slog.Any("error", err))
			if final {
				if err := c.store.ReturnPartsDrop(ctx, job.ID); err != nil {
					log.WarnContext(ctx, "split job's clean-up not given back; its remaining part files stay", slog.Any("error", err))
				}
			}
			return
		}
	}
	log.DebugContext(ctx, "split job's parts dropped", slog.Int("files", n), slog.Bool("final", final))
}

// DropSplitParts drops the parts' files of split jobs that finished (as
// cancelled, failed, or completed by a coordinator that stopped before it
// dropped them) longer ago than a presigned URL lives plus a lease: no
// pod of theirs can upload any more.
func (s *Services) DropSplitParts(ctx context.Context) (int, error) {
	before := s.c.cfg.Clock.Now().Add(-s.c.objects.PresignTTL() - s.c.cfg.Lease)
	jobs, err := s.c.store.PartsToDrop(ctx, before, s.cfg.Batch)
	if err != nil {
		return 0, err
	}
	for _, j := range jobs {
		s.c.dropParts(ctx, j, true)
	}
	return len(jobs), nil
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
// stitch task every part's files as presigned GETs, but for the media
// segments, which the chunks wrote at their final keys.
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
		// A part with a ledger left its segments at their final keys; one
		// without (an encoder from before ledgers) hands them over.
		ledger := slices.ContainsFunc(recs, func(r outputRecord) bool { return r.Name == ledgerName })
		for _, r := range recs {
			if ledger && coordinatorv1.IsMediaSegment(r.Name) {
				continue // at its final key already; the ledger describes it
			}
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

// ledgerName is the file in which a part lists its media segments
// (encoder/ffmpeg.LedgerName; the coordinator does not import the encoder).
const ledgerName = "segments.json"

func chunkRange(c *store.ChunkRange) *coordinatorv1.ChunkRange {
	if c == nil {
		return nil
	}
	return &coordinatorv1.ChunkRange{Index: int32(c.Index), StartSeconds: c.Start, EndSeconds: c.End, FirstSegment: int32(c.FirstSegment)}
}
