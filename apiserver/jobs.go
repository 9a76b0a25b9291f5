package apiserver

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/caption"
	"github.com/mpegflow/mpegflow/internal/encodespec"
	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/netguard"
	"github.com/mpegflow/mpegflow/internal/objscope"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/validation"
)

const maxIdempotencyKey = 255

func (s *Server) parseJobRequest(ctx context.Context, req apiv1.JobRequest, orgID uuid.UUID) (store.NewJob, error) {
	var errs validation.Errors
	nj := store.NewJob{
		OrgID: orgID, PoolID: req.Pool, Lane: req.Lane, Priority: req.Priority, MaxAttempts: req.MaxAttempts,
	}
	if nj.PoolID == "" {
		nj.PoolID = apiv1.DefaultPoolID
	}
	if nj.Lane == "" {
		nj.Lane = apiv1.LaneLive
	}
	if !slices.Contains(apiv1.Lanes, nj.Lane) {
		errs.Add("lane", "must be %s", strings.Join(apiv1.Lanes, " or "))
	}
	if nj.Priority < -100 || nj.Priority > 100 {
		errs.Add("priority", "must be between -100 and 100")
	}
	if nj.MaxAttempts == 0 {
		nj.MaxAttempts = s.cfg.DefaultMaxAttempts
	}
	if nj.MaxAttempts < 1 || nj.MaxAttempts > 20 {
		errs.Add("max_attempts", "must be between 1 and 20")
	}
	switch {
	case req.Input.AssetID != "" && req.Input.URL != "":
		errs.Add("input", "give either asset_id or url, not both")
	case req.Input.AssetID != "":
		id, err := uuid.Parse(req.Input.AssetID)
		if err != nil {
			errs.Add("input.asset_id", "must be an asset id (UUID)")
		} else {
			nj.InputAssetID = &id
		}
	case req.Input.URL != "":
		input, detail, err := s.checkInputURL(ctx, orgID, req.Input.URL)
		switch {
		case err != nil:
			return store.NewJob{}, err
		case detail != "":
			errs.Add("input.url", "%s", detail)
		default:
			nj.InputURL = &input
		}
	default:
		errs.Add("input", "is required: give asset_id or url")
	}
	captions, err := s.checkCaptions(ctx, orgID, req.Captions, &errs)
	if err != nil {
		return store.NewJob{}, err
	}
	nj.Captions = mustJSON(captions)
	given := 0
	for _, set := range []bool{req.WorkflowID != "", req.Workflow != "", len(req.Spec) > 0} {
		if set {
			given++
		}
	}
	if given != 1 {
		errs.Add("workflow_id", "give exactly one of workflow_id, workflow (a built-in: %s) or spec", strings.Join(encodespec.BuiltinNames(), ", "))
	}
	switch {
	case req.WorkflowID != "":
		id, err := uuid.Parse(req.WorkflowID)
		if err != nil {
			errs.Add("workflow_id", "must be a workflow id (UUID)")
		} else {
			nj.WorkflowID = &id
		}
	case req.Workflow != "":
		spec, ok := encodespec.BuiltinJSON(req.Workflow)
		if !ok {
			errs.Add("workflow", "unknown built-in workflow; want one of %s", strings.Join(encodespec.BuiltinNames(), ", "))
		} else {
			nj.Spec = spec
		}
	case len(req.Spec) > 0:
		spec, err := encodespec.Parse(req.Spec)
		if ve, ok := validation.As(err); ok {
			errs = append(errs, ve.Prefixed("spec")...)
		} else if err != nil {
			errs.Add("spec", "%s", err.Error())
		} else {
			nj.Spec = mustJSON(spec)
		}
	}
	if len(req.Metadata) > 50 {
		errs.Add("metadata", "at most 50 keys")
	}
	for k, v := range req.Metadata {
		if len(k) == 0 || len(k) > 64 || len(v) > 512 {
			errs.Add("metadata."+k, "keys must be 1 to 64 bytes and values at most 512 bytes")
		}
	}
	nj.Metadata = mustJSON(cmpMap(req.Metadata))
	return nj, errs.Err()
}

func cmpMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("marshal of a validated value failed: " + err.Error()) // only plain data reaches here
	}
	return b
}

// checkInputURL returns the input to store for u, or why u cannot be a job
// input. A storage reference (an s3:// URL, or a URL of the deployment's
// own storage endpoint, such as a presigned URL) must lie inside the
// organization's storage scope (objscope) and is stored in its canonical
// s3:// form, which the coordinator checks again and presigns at claim. Any
// other https (or, in development, http) URL must resolve to public
// addresses only (the SSRF guard); the encoder checks the address again
// when it connects.
func (s *Server) checkInputURL(ctx context.Context, orgID uuid.UUID, u string) (input, detail string, err error) {
	if len(u) > 2048 {
		return "", "must be at most 2048 characters", nil
	}
	ref, isRef, err := s.scopes.Reference(ctx, orgID, u)
	var refused *objscope.Refusal
	if errors.As(err, &refused) {
		return "", refused.Error(), nil
	}
	if err != nil {
		return "", "", err
	}
	if isRef {
		return ref.URL(), "", nil
	}
	parsed, perr := url.Parse(u)
	if perr != nil || parsed.Host == "" {
		return "", "must be an absolute https:// or s3:// URL", nil //nolint:nilerr // an unparsable URL is the client's mistake: reported in detail, not as a server error
	}
	if parsed.Scheme != "https" && parsed.Scheme != "http" {
		return "", "must use https or s3", nil
	}
	return u, s.guardURL(ctx, u), nil
}

// checkCaptions checks a submission's caption files (internal/caption's
// rules: at most 8, srt or vtt, one per well-formed language) and each URL
// exactly as the input's (checkInputURL: inside the organization's storage
// scope, or a public https URL), adding field errors to errs. It returns
// them as the job stores them: canonical URLs and language tags.
func (s *Server) checkCaptions(ctx context.Context, orgID uuid.UUID, given []apiv1.JobCaption, errs *validation.Errors) ([]apiv1.JobCaption, error) {
	sidecars := make([]caption.Sidecar, len(given))
	for i, c := range given {
		sidecars[i] = caption.Sidecar{URL: c.URL, Language: c.Language, Format: c.Format}
	}
	langs, cerrs := caption.Check(sidecars, "captions")
	*errs = append(*errs, cerrs...)
	if len(given) > caption.MaxPerJob {
		return nil, nil
	}
	out := make([]apiv1.JobCaption, 0, len(given))
	for i, c := range given {
		if c.URL == "" {
			continue
		}
		u, detail, err := s.checkInputURL(ctx, orgID, c.URL)
		if err != nil {
			return nil, err
		}
		if detail != "" {
			errs.Add(fmt.Sprintf("captions[%d].url", i), "%s", detail)
			continue
		}
		out = append(out, apiv1.JobCaption{URL: u, Language: langs[i], Format: c.Format})
	}
	return out, nil
}

// guardURL runs the SSRF guard on a customer URL and returns the refusal
// as a field detail, or "".
func (s *Server) guardURL(ctx context.Context, u string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.guard.CheckURL(ctx, u); err != nil {
		if r := netguard.Refusal(err); r != nil {
			return "refused: " + r.Reason
		}
		return "could not be checked: " + err.Error()
	}
	return ""
}

func (s *Server) createJob(c *fiber.Ctx) error {
	p := principal(c)
	var req apiv1.JobRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	nj, err := s.parseJobRequest(c.UserContext(), req, p.OrgID)
	if err != nil {
		return err
	}
	if key := c.Get("Idempotency-Key"); key != "" {
		if len(key) > maxIdempotencyKey || strings.ContainsFunc(key, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
			return invalidField("Idempotency-Key", "must be 1 to %d printable ASCII characters", maxIdempotencyKey)
		}
		sum := sha256.Sum256(c.Body())
		nj.IdempotencyKey, nj.RequestHash = &key, sum[:]
	}
	ctx := c.UserContext()
	var settle func(store.Job, bool, func()) bool
	if s.cfg.Handoff != nil && nj.InputAssetID == nil && nj.WorkflowID == nil {
		// A claim waiting idle on the job's lane here: the statement
		// inserts the job claimed by it (the long way, which an asset or
		// workflow input takes, does not; its job is handed over queued).
		nj.Claim, settle = s.cfg.Handoff.Reserve(ctx, nj.PoolID, nj.Lane, nj.OrgID.String())
	}
	job, created, err := s.submit(ctx, nj)
	handed := false
	if settle != nil {
		handed = settle(job, created && err == nil, s.announce(ctx, job))
	}
	if err != nil {
		return err
	}
	if !created {
		c.Set("Idempotent-Replayed", "true")
		return sendJob(c, fiber.StatusOK, jobOut(job))
	}
	// A job a reserved claim did not take was offered by its settling.
	if !handed && (settle != nil || !s.handOff(ctx, job)) {
		s.dispatch(ctx, job, "job.queued", s.tenant(ctx, p, job.OrgID))
	}
	return sendJob(c, fiber.StatusCreated, jobOut(job))
}

// handOff gives a just-submitted job to a claim waiting for its lane in
// this process (Config.Handoff), which claims it without a push or a pop,
// and posts its queued event as the claim takes it. False when there is
// no such claim: the job is to be dispatched.
func (s *Server) handOff(ctx context.Context, job store.Job) bool {
	if s.cfg.Handoff == nil || job.Status != apiv1.JobQueued {
		return false
	}
	return s.cfg.Handoff.Offer(job.PoolID, job.Lane, job.OrgID.String(), job.ID.String(), s.announce(ctx, job))
}

// announce posts job.queued for a job a claim takes straight from its
// submission, as dispatch posts it for a job it pushes.
func (s *Server) announce(ctx context.Context, job store.Job) func() {
	// The event points at copies, as dispatch's does.
	org, id := job.OrgID, job.ID
	return func() {
		if err := s.bus.Post(events.Event{Type: "job.queued", OrgID: &org, JobID: &id, PoolID: job.PoolID}); err != nil {
			s.log.WarnContext(ctx, "event not published; live subscribers miss it, check redis",
				slog.String("event", "job.queued"), slog.String("job_id", id.String()), slog.Any("error", err))
		}
	}
}

// submit commits a submission: with concurrent ones in one statement
// (group commit) when that statement can settle it, else (an asset or
// workflow input, a refusal, a repeated idempotency key) the long way, on
// this request's own goroutine.
func (s *Server) submit(ctx context.Context, nj store.NewJob) (store.Job, bool, error) {
	if nj.InputAssetID == nil && nj.WorkflowID == nil {
		res, err := s.creates.Do(ctx, nj)
		if err != nil {
			return store.Job{}, false, err
		}
		if !res.LongWay {
			return res.Job, res.Created, res.Err
		}
	}
	return s.store.CreateJob(ctx, nj)
}

// tenant is org as the queue knows it, with its fair-share weight. When
// org is the principal's own organization the weight comes with the
// principal, read with the API key (and cached with it: a change of plan
// or share_weight drops the organization's cached keys on every
// replica), so the submit path reads nothing more; for any other
// organization it is read from Postgres. A failed read leaves weight 0
// (Redis keeps the weight it holds) and is logged.
func (s *Server) tenant(ctx context.Context, p store.Principal, org uuid.UUID) queue.Tenant {
	if p.OrgID == org && p.ShareWeight > 0 {
		return queue.Tenant{Org: org.String(), Weight: p.ShareWeight}
	}
	tenants, err := queue.Tenants(ctx, s.store, []uuid.UUID{org})
	if err != nil {
		s.log.WarnContext(ctx, "share weight not read; jobs are queued with the weight redis holds and the queue reconciler sets it, check Postgres",
			slog.String("org_id", org.String()), slog.Any("error", err))
	}
	return tenants[org]
}

// dispatch pushes a committed job's id onto its lane as t's and announces
// it, in one Redis round trip shared with the pushes ready at the same time
// (queue.Queue.PushPublishMany). A Redis failure
// here loses nothing: the queue reconciler re-pushes queued jobs missing
// from their list; live subscribers miss the event.
func (s *Server) dispatch(ctx context.Context, job store.Job, event string, t queue.Tenant) {
	// The event points at copies: a pointer into job would move the whole
	// job to the heap on every submission.
	org, id := job.OrgID, job.ID
	e := events.Event{Type: event, OrgID: &org, JobID: &id, PoolID: job.PoolID}
	err := s.bus.EmitVia(ctx, e, func(ctx context.Context, payload []byte) error {
		pushed, err := s.pushes.Do(ctx, queue.JobPush{Pool: job.PoolID, Lane: job.Lane, Tenant: t, JobID: job.ID.String(), Priority: job.Priority, Event: payload})
		return cmp.Or(err, pushed)
	})
	if err != nil {
		s.log.WarnContext(ctx, "job committed but neither pushed to redis nor announced; the queue reconciler will push it and live subscribers miss the event, check redis",
			slog.String("job_id", job.ID.String()), slog.String("pool_id", job.PoolID), slog.String("event", event), slog.Any("error", err))
	}
}

func (s *Server) emit(ctx context.Context, e events.Event) {
	if err := s.bus.Emit(ctx, e); err != nil {
		s.log.WarnContext(ctx, "event not published; live subscribers miss it, check redis", slog.String("event", e.Type), slog.Any("error", err))
	}
}

func (s *Server) listJobs(c *fiber.Ctx) error {
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	f := store.JobFilter{Status: c.Query("status"), PoolID: c.Query("pool"), Lane: c.Query("lane")}
	if f.Status != "" && !slices.Contains(apiv1.JobStatuses, f.Status) {
		return invalidField("status", "must be one of %s", strings.Join(apiv1.JobStatuses, ", "))
	}
	if f.Lane != "" && f.Lane != apiv1.LaneLive && f.Lane != apiv1.LaneBackfill {
		return invalidField("lane", "must be %s or %s", apiv1.LaneLive, apiv1.LaneBackfill)
	}
	if raw := c.Query("batch"); raw != "" {
		id, err := uuid.Parse(raw)
		if err != nil {
			return invalidField("batch", "must be a batch id")
		}
		f.BatchID = &id
	}
	if f.CreatedAfter, err = timeParam(c, "created_after"); err != nil {
		return err
	}
	if f.CreatedBefore, err = timeParam(c, "created_before"); err != nil {
		return err
	}
	jobs, err := s.store.ListJobs(c.UserContext(), principal(c).OrgID, f, page)
	if err != nil {
		return err
	}
	return c.JSON(pageOf(jobs, page, func(j store.Job) (time.Time, uuid.UUID) { return j.CreatedAt, j.ID }, jobOut))
}

func (s *Server) getJob(c *fiber.Ctx) error {
	id, err := pathID(c, "job")
	if err != nil {
		return err
	}
	job, err := s.store.GetJob(c.UserContext(), principal(c).OrgID, id)
	if err != nil {
		return notFoundOr(err, "job")
	}
	return c.JSON(jobOut(job))
}

func (s *Server) cancelJob(c *fiber.Ctx) error {
	id, err := pathID(c, "job")
	if err != nil {
		return err
	}
	job, err := s.store.CancelJob(c.UserContext(), principal(c).OrgID, id)
	if err != nil {
		return notFoundOr(err, "job")
	}
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.JobsTotal.WithLabelValues(apiv1.JobCancelled).Inc()
	}
	s.emit(c.UserContext(), events.Event{Type: "job.cancelled", OrgID: &job.OrgID, JobID: &job.ID, PoolID: job.PoolID})
	return c.JSON(jobOut(job))
}

func (s *Server) jobEvents(c *fiber.Ctx) error {
	id, err := pathID(c, "job")
	if err != nil {
		return err
	}
	since, err := intParam(c, "since", 0, 0, math.MaxInt)
	if err != nil {
		return err
	}
	limit, err := intParam(c, "limit", 100, 1, 200)
	if err != nil {
		return err
	}
	evs, err := s.store.ListJobEvents(c.UserContext(), principal(c).OrgID, id, int64(since), limit)
	if err != nil {
		return notFoundOr(err, "job")
	}
	return c.JSON(listOf(evs, jobEventOut))
}
