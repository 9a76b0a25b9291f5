package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	"github.com/mpegflow/mpegflow/internal/encodespec"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/validation"
)

// MaxSplitChunks bounds the chunks of one split job (ten hours in 10 s
// chunks), as the encoder's planner does.
const MaxSplitChunks = 3600

// maxMediaInfo bounds the probe a Split hands to every task.
const maxMediaInfo = 256 << 10

// Split turns a held job into its tasks (docs/design/0028-chunked-encoding.md)
// and pushes them onto the job's queue, where KEDA counts each as a Job.
func (c *Coordinator) Split(ctx context.Context, req *coordinatorv1.SplitRequest) (*coordinatorv1.SplitResponse, error) {
	id, err := parseJobID("Split", req.GetJobId())
	if err != nil {
		return nil, err
	}
	plan, err := checkSplit(req)
	if err != nil {
		return nil, c.toStatus(ctx, "Split", err)
	}
	tok, err := claimTokenHash(ctx)
	if err != nil {
		return nil, err
	}
	plan.Admit = func(j store.Job) error { return admitSplit(j, plan) }
	parent, tasks, err := c.store.SplitJob(ctx, id, poolOf(ctx), tok, plan, c.cfg.Clock.Now())
	if errors.Is(err, store.ErrNotSplittable) {
		return nil, status.Error(codes.FailedPrecondition, "Split: "+err.Error())
	}
	if err != nil {
		return nil, c.toStatus(ctx, "Split", err)
	}
	c.pushTasks(ctx, parent, tasks...)
	c.emit(ctx, parent, "job.split", map[string]any{"chunks": len(plan.Chunks), "whole": plan.Whole})
	resp := &coordinatorv1.SplitResponse{}
	for _, t := range tasks {
		resp.TaskIds = append(resp.TaskIds, t.ID.String())
	}
	return resp, nil
}

// checkSplit checks a split plan: chunks that cover the input from 0 in
// order, without gap or overlap (the last ends at the input's duration),
// their first segments increasing, and the probe a JSON object.
func checkSplit(req *coordinatorv1.SplitRequest) (store.Split, error) {
	var errs validation.Errors
	chunks := req.GetChunks()
	if len(chunks) < 2 || len(chunks) > MaxSplitChunks {
		errs.Add("chunks", "a split needs 2 to %d chunks, got %d", MaxSplitChunks, len(chunks))
	}
	plan := store.Split{Whole: req.GetWholeTask(), Chunks: make([]store.ChunkRange, 0, len(chunks))}
	for i, ch := range chunks {
		field := fmt.Sprintf("chunks[%d]", i)
		start, end := ch.GetStartSeconds(), ch.GetEndSeconds()
		switch {
		case int(ch.GetIndex()) != i:
			errs.Add(field+".index", "must be %d: chunks are listed in order from 0", i)
		case math.IsNaN(start) || math.IsInf(start, 0) || math.IsNaN(end) || math.IsInf(end, 0) || end <= start || start < 0:
			errs.Add(field, "must be a finite range of the input with end_seconds after start_seconds")
		case i == 0 && start != 0:
			errs.Add(field+".start_seconds", "the first chunk starts at 0")
		case i > 0 && start != chunks[i-1].GetEndSeconds():
			errs.Add(field+".start_seconds", "must be where chunk %d ends (%g): chunks cover the input without gap or overlap", i-1, chunks[i-1].GetEndSeconds())
		case ch.GetFirstSegment() < 0 || (i > 0 && ch.GetFirstSegment() <= chunks[i-1].GetFirstSegment()):
			errs.Add(field+".first_segment", "must be after chunk %d's and not negative", i-1)
		}
		plan.Chunks = append(plan.Chunks, store.ChunkRange{Index: i, Start: start, End: end, FirstSegment: int(ch.GetFirstSegment())})
		if i > 0 {
			plan.Chunks[i-1].NextSegment = int(ch.GetFirstSegment())
		}
	}
	media := req.GetMediaInfoJson()
	var probe map[string]any
	switch {
	case len(media) > maxMediaInfo:
		errs.Add("media_info_json", "at most %d bytes", maxMediaInfo)
	case json.Unmarshal(media, &probe) != nil || probe == nil:
		errs.Add("media_info_json", "must be the input's probe as a JSON object")
	}
	plan.Media = media
	return plan, errs.Err()
}

// admitSplit checks a plan against the job it splits: the job's spec asks
// for chunking, and every chunk but the last is at least 40 % of its
// chunk_seconds (the planner moves a boundary by at most a quarter of a
// chunk towards a keyframe), so a pod cannot turn a job into more Jobs
// than the customer's setting allows. The probe is the pod's: a split
// cannot be checked against the input without reading it.
func admitSplit(j store.Job, plan store.Split) error {
	spec, err := encodespec.Parse(j.Spec)
	if err != nil {
		return fmt.Errorf("split: the job's spec: %w", err)
	}
	if spec.Chunking == nil {
		return status.Error(codes.FailedPrecondition, "Split: the job's spec does not ask for chunking")
	}
	shortest := 0.4 * spec.Chunking.ChunkSeconds
	for _, c := range plan.Chunks[:len(plan.Chunks)-1] {
		if c.End-c.Start < shortest {
			return status.Errorf(codes.InvalidArgument, "Split: chunk %d lasts %g s; the job's chunks are about %g s (at least %g s but the last)",
				c.Index, c.End-c.Start, spec.Chunking.ChunkSeconds, shortest)
		}
	}
	return nil
}

// pushTasks pushes the queued tasks of parent onto its pool's queue; what
// fails to push, the queue reconciler pushes later (Postgres is the truth).
func (c *Coordinator) pushTasks(ctx context.Context, parent store.Job, tasks ...store.Job) {
	ctx = context.WithoutCancel(ctx)
	tenants, err := queue.Tenants(ctx, c.store, []uuid.UUID{parent.OrgID})
	if err != nil {
		c.log.WarnContext(ctx, "share weight not read; the tasks are pushed with the weight redis holds and the queue reconciler sets it, check Postgres",
			slog.String("job_id", parent.ID.String()), slog.Any("error", err))
	}
	ids := make([]string, 0, len(tasks))
	for _, t := range tasks {
		ids = append(ids, t.ID.String())
	}
	if parent.Priority > 0 {
		// Ahead of the queue, as the job was; in reverse, so the first
		// chunk is popped first.
		for i := len(ids) - 1; i >= 0 && err == nil; i-- {
			err = c.queue.Push(ctx, parent.PoolID, parent.Lane, tenants[parent.OrgID], ids[i], parent.Priority)
		}
	} else {
		err = c.queue.PushMany(ctx, parent.PoolID, parent.Lane, tenants[parent.OrgID], ids)
	}
	if err != nil {
		c.log.WarnContext(ctx, "tasks of a split job not pushed; the queue reconciler will push them",
			slog.String("job_id", parent.ID.String()), slog.Int("tasks", len(ids)), slog.Any("error", err))
	}
}
