package apiserver

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/backfill"
	"github.com/mpegflow/mpegflow/internal/encodespec"
	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/validation"
)

// Bounds of the batch caps.
const (
	maxBatchConcurrency = 100_000
	maxSubmitRate       = 10_000
)

// BatchKicker starts expanding a newly accepted batch at once.
type BatchKicker interface{ Kick() }

func (s *Server) parseBatchRequest(req *apiv1.BatchRequest, orgID uuid.UUID) (store.NewBatch, error) {
	var errs validation.Errors
	nb := store.NewBatch{OrgID: orgID, PoolID: req.Pool, MaxAttempts: req.MaxAttempts,
		MaxConcurrency: req.MaxConcurrency, SubmitRate: req.SubmitRate}
	if nb.PoolID == "" {
		nb.PoolID = apiv1.DefaultPoolID
		req.Pool = nb.PoolID
	}
	if req.Lane == "" {
		req.Lane = apiv1.LaneBackfill
	}
	if req.Lane != apiv1.LaneBackfill {
		errs.Add("lane", "batches run on the backfill lane only, so they never delay live work")
	}
	if nb.MaxAttempts == 0 {
		nb.MaxAttempts = s.cfg.DefaultMaxAttempts
		req.MaxAttempts = nb.MaxAttempts
	}
	if nb.MaxAttempts < 1 || nb.MaxAttempts > 20 {
		errs.Add("max_attempts", "must be between 1 and 20")
	}
	if c := req.MaxConcurrency; c != nil && (*c < 1 || *c > maxBatchConcurrency) {
		errs.Add("max_concurrency", "must be between 1 and %d", maxBatchConcurrency)
	}
	if r := req.SubmitRate; r != nil && (!(*r > 0) || *r > maxSubmitRate) {
		errs.Add("submit_rate", "must be more than 0 and at most %d jobs per second", maxSubmitRate)
	}
	if len(req.Key) > 200 || strings.ContainsFunc(req.Key, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
		errs.Add("key", "must be at most 200 printable ASCII characters")
	}
	switch {
	case (req.WorkflowID != "") == (req.Workflow != ""):
		errs.Add("workflow_id", "give exactly one of workflow_id or workflow (a built-in: %s)", strings.Join(encodespec.BuiltinNames(), ", "))
	case req.WorkflowID != "":
		id, err := uuid.Parse(req.WorkflowID)
		if err != nil {
			errs.Add("workflow_id", "must be a workflow id (UUID)")
		} else {
			nb.WorkflowID = &id
		}
	default:
		spec, ok := encodespec.BuiltinJSON(req.Workflow)
		if !ok {
			errs.Add("workflow", "no workflow %q: want a built-in (%s) or workflow_id", req.Workflow, strings.Join(encodespec.BuiltinNames(), ", "))
		} else {
			nb.Workflow, nb.Spec = req.Workflow, spec
		}
	}
	return nb, errs.Err()
}

// createBatch validates a batch, reads its source once (streaming) to count
// inputs and find malformed lines, and records it; expansion into jobs runs
// in the background from a persisted cursor. Bad input answers 4xx and
// creates nothing.
func (s *Server) createBatch(c *fiber.Ctx) error {
	p := principal(c)
	ctx := c.UserContext()
	var req apiv1.BatchRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	src := backfill.Source(req.Source)
	nb, err := s.parseBatchRequest(&req, p.OrgID)
	objects, serr := s.scopes.Scope(ctx, p.OrgID)
	if serr != nil {
		return serr
	}
	scope := backfill.Scope{Objects: objects, Guard: s.guard}
	plan, perr := backfill.NewPlan(ctx, &src, scope, backfill.StoreAssets{Store: s.store})
	if ve, ok := validation.As(err); ok {
		pe, _ := validation.As(perr)
		return invalid(append(ve, pe...))
	}
	if perr != nil {
		return perr
	}
	req.Source = apiv1.BatchSource(src) // as normalized by NewPlan
	// The request, normalized, identifies the batch: its hash is the
	// default key, so re-running the same command finds the same batch.
	key := req.Key
	req.Key = ""
	canonical := mustJSON(req)
	sum := sha256.Sum256(canonical)
	nb.RequestHash = sum[:]
	nb.Key = key
	if nb.Key == "" {
		nb.Key = "sha256:" + hex.EncodeToString(sum[:])
	}
	nb.Source = mustJSON(src)
	if existing, found, err := s.store.BatchByKey(ctx, p.OrgID, nb.Key, nb.RequestHash); err != nil {
		return err
	} else if found {
		return s.replayBatch(c, existing)
	}
	if nb.WorkflowID != nil {
		if _, err := s.store.GetWorkflow(ctx, p.OrgID, *nb.WorkflowID); errors.Is(err, store.ErrNotFound) {
			return invalidField("workflow_id", "no workflow %s in this organization", *nb.WorkflowID)
		} else if err != nil {
			return err
		}
	}
	sum2, err := plan.Scan(ctx, s.objects, backfill.MaxInputs)
	if errors.Is(err, objstore.ErrNoObject) {
		return invalidField("source.manifest_asset_id", "the manifest asset has no uploaded content")
	}
	if errors.Is(err, backfill.ErrSourceTooLarge) {
		return invalidField("source", "holds more than %d lines or objects (inputs or not), or a manifest of more than %d bytes; split the source into several batches",
			backfill.MaxEntries, int64(backfill.MaxManifestBytes))
	}
	if err != nil {
		return fmt.Errorf("read batch source: %w", err)
	}
	if sum2.Malformed > 0 && src.OnError != backfill.OnErrorSkip {
		var errs validation.Errors
		for _, le := range sum2.LineErrors {
			errs.Add(fmt.Sprintf("source.lines[%d]", le.Line), "%s", le.Detail)
		}
		p := invalid(errs)
		p.Detail = fmt.Sprintf("the manifest has %d malformed lines (the first %d are listed by line number); fix them, or send on_error=skip to expand the rest", sum2.Malformed, len(errs))
		return p
	}
	switch {
	case sum2.Inputs > backfill.MaxInputs:
		return invalidField("source", "more than %d inputs; split the source into several batches", backfill.MaxInputs)
	case sum2.Inputs == 0 && src.Kind() == backfill.KindPrefix:
		return invalidField("source.prefix", "no objects under %s match the include and exclude patterns", src.Prefix)
	case sum2.Inputs == 0:
		return invalidField("source.manifest_asset_id", "the manifest has no valid inputs (%d malformed lines)", sum2.Malformed)
	}
	nb.Expected, nb.Skipped, nb.ManifestETag = sum2.Inputs, sum2.Malformed, sum2.ManifestETag
	if len(sum2.LineErrors) > 0 {
		nb.LineErrors = mustJSON(sum2.LineErrors)
	}
	b, created, err := s.store.CreateBatch(ctx, nb)
	if err != nil {
		return err
	}
	if !created {
		return s.replayBatch(c, b)
	}
	if s.cfg.Batches != nil {
		s.cfg.Batches.Kick()
	}
	return c.Status(fiber.StatusCreated).JSON(s.batchView(b, store.BatchCounts{}))
}

func (s *Server) replayBatch(c *fiber.Ctx, b store.Batch) error {
	b, counts, err := s.store.GetBatch(c.UserContext(), b.OrgID, b.ID)
	if err != nil {
		return err
	}
	c.Set("Idempotent-Replayed", "true")
	return c.JSON(s.batchView(b, counts))
}

func (s *Server) batchView(b store.Batch, counts store.BatchCounts) apiv1.Batch {
	return batchOut(b, counts, time.Now())
}

func (s *Server) listBatches(c *fiber.Ctx) error {
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	bs, err := s.store.ListBatches(c.UserContext(), principal(c).OrgID, page)
	if err != nil {
		return err
	}
	return c.JSON(pageOf(bs, page, func(b store.Batch) (time.Time, uuid.UUID) { return b.CreatedAt, b.ID }, batchSummaryOut))
}

func (s *Server) getBatch(c *fiber.Ctx) error {
	id, err := pathID(c, "batch")
	if err != nil {
		return err
	}
	b, counts, err := s.store.GetBatch(c.UserContext(), principal(c).OrgID, id)
	if err != nil {
		return notFoundOr(err, "batch")
	}
	return c.JSON(s.batchView(b, counts))
}

func (s *Server) cancelBatch(c *fiber.Ctx) error {
	id, err := pathID(c, "batch")
	if err != nil {
		return err
	}
	orgID := principal(c).OrgID
	b, n, err := s.store.CancelBatch(c.UserContext(), orgID, id, time.Now())
	if err != nil {
		return notFoundOr(err, "batch")
	}
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.JobsTotal.WithLabelValues(apiv1.JobCancelled).Add(float64(n))
	}
	_, counts, err := s.store.GetBatch(c.UserContext(), orgID, id)
	if err != nil {
		return err
	}
	v := s.batchView(b, counts)
	v.Affected = &n
	return c.JSON(v)
}

func (s *Server) retryFailedBatch(c *fiber.Ctx) error {
	id, err := pathID(c, "batch")
	if err != nil {
		return err
	}
	p := principal(c)
	orgID := p.OrgID
	ctx := c.UserContext()
	b, n, err := s.store.RetryFailedBatch(ctx, orgID, id, time.Now(), func(jobs []store.QueuedJob) error {
		ids := make([]string, len(jobs))
		for i, j := range jobs {
			ids[i] = j.ID.String()
		}
		if err := s.queue.PushMany(ctx, jobs[0].PoolID, jobs[0].Lane, s.tenant(ctx, p, orgID), ids); err != nil {
			s.log.WarnContext(ctx, "retried batch jobs committed but not pushed; the queue reconciler will push them, check redis",
				slog.String("batch_id", id.String()), slog.Any("error", err))
		}
		return nil
	})
	if err != nil {
		return notFoundOr(err, "batch")
	}
	_, counts, err := s.store.GetBatch(ctx, orgID, id)
	if err != nil {
		return err
	}
	v := s.batchView(b, counts)
	v.Affected = &n
	return c.JSON(v)
}
