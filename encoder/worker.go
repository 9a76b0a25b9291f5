package encoder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	"github.com/mpegflow/mpegflow/api/encodepod"
	"github.com/mpegflow/mpegflow/encoder/ffmpeg"
	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// Errors the caller maps to exit codes.
var (
	// ErrCancelled: the job was cancelled while running; FFmpeg was stopped.
	ErrCancelled = errors.New("job cancelled")
	// ErrPreempted: SIGTERM arrived; the job is handed back to the queue.
	ErrPreempted = errors.New("preempted: job handed back to the queue")
)

// Worker runs the jobs of one encode pod.
type Worker struct {
	cfg    Config
	client coordinatorv1.CoordinatorClient
	log    *slog.Logger
	// reportStream is the pod's stream of reports while it has one
	// (reports); only the run loop's goroutine uses it.
	reportStream *reportStream
}

// Run claims at most cfg.JobsPerPod jobs and runs them. It returns nil when
// there was no work or the jobs completed (or failed cleanly: a failure is
// the job's, not the pod's). stop is closed on SIGTERM.
func Run(ctx context.Context, cfg Config, stop <-chan struct{}, log *slog.Logger) error {
	cfg.defaults()
	conn, err := grpc.NewClient(cfg.Coordinator, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("connect to coordinator %s: %w", cfg.Coordinator, err)
	}
	defer conn.Close()
	w := &Worker{cfg: cfg, client: coordinatorv1.NewCoordinatorClient(conn), log: log}
	err = w.run(ctx, stop)
	w.dropReports()
	w.leave(ctx)
	return err
}

// leave tells the coordinator this pod is exiting, so its worker stops
// counting at once. It is best effort: if the coordinator is not told, the
// Stale Worker Sweeper takes the worker offline a few minutes later.
func (w *Worker) leave(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaveTimeout)
	defer cancel()
	if _, err := w.client.Leave(w.auth(ctx, ""), &coordinatorv1.LeaveRequest{Pod: w.cfg.Pod}); err != nil {
		w.log.WarnContext(ctx, "could not tell the coordinator this pod is leaving; the Stale Worker Sweeper will take its worker offline",
			slog.String("pool_id", w.cfg.Pool), slog.Any("error", err))
	}
}

// leaveTimeout bounds the goodbye, so that a pod whose coordinator is gone
// still exits promptly.
const leaveTimeout = 5 * time.Second

func (w *Worker) auth(ctx context.Context, claimToken string) context.Context {
	kv := []string{coordinatorv1.MetadataAuthorization, "Bearer " + w.cfg.WorkerToken, coordinatorv1.MetadataPool, w.cfg.Pool}
	if claimToken != "" {
		kv = append(kv, coordinatorv1.MetadataClaimToken, claimToken)
	}
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

// run claims and runs up to cfg.JobsPerPod jobs, one after another (a
// dedicated pool's setting; one for the shared pool). A job that completes
// while the pod may run more claims the next in the same call (complete:
// waiting for one as the pod's first poll would, unless the last report
// found one queued); a job that ends otherwise, or whose report claimed
// none, is followed by a Claim of its own. Each report is in before the
// pod goes on (or exits). A report the coordinator could not be told of is
// the pod's error: once it knows, the pod claims no further job.
func (w *Worker) run(ctx context.Context, stop <-chan struct{}) error {
	var (
		errs []error
		next *coordinatorv1.Job // claimed by the last report
		ask  *nextClaim         // the last report's claim
	)
	for n := 0; n < w.cfg.JobsPerPod && errors.Join(errs...) == nil; n++ {
		job := next
		if job == nil {
			var err error
			job, err = w.claim(ctx, stop, ask.polled())
			if err != nil || job == nil {
				errs = append(errs, err)
				break
			}
		}
		if isStopped(stop) {
			// SIGTERM came as the claim, or the last report's, answered:
			// the job goes back.
			errs = append(errs, w.preempt(w.log.With(slog.String("job_id", job.GetId()), slog.String("pool_id", w.cfg.Pool)), job))
			break
		}
		if n == 0 {
			defer os.Remove(filepath.Join(w.cfg.ScratchDir, encodepod.ReadyFile)) //nolint:errcheck // best effort: ScratchDir (the pod's emptyDir, or the local executor's scratch directory) is removed after this process exits
		}
		report := w.runJob(ctx, stop, job)
		// The next claim waits for work in the report (on the pod's
		// stream of reports) unless the last found a job queued: then
		// the next is likely queued too, and Complete, answering both in
		// one message, is the cheaper call.
		wait := w.pollWait(0)
		if ask != nil && ask.queued {
			wait = 0
		}
		ask = nil
		if n+1 < w.cfg.JobsPerPod && !isStopped(stop) {
			ask = &nextClaim{req: w.claimRequest(wait)}
		}
		var err error
		next, err = report(ask) // a job only with no error, and only when another may run
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// runJob runs a claimed job up to its report, which it answers for the
// caller to send: Complete once the outputs are uploaded (claiming the
// pod's next job with next, when not nil: the report answers it), or
// Fail. The report removes the job's scratch directory.
func (w *Worker) runJob(ctx context.Context, stop <-chan struct{}, job *coordinatorv1.Job) (report func(next *nextClaim) (*coordinatorv1.Job, error)) {
	log := w.log.With(slog.String("job_id", job.GetId()), slog.String("pool_id", w.cfg.Pool), slog.Int("attempt", int(job.GetAttempt())))
	failed := func(cause error) func(*nextClaim) (*coordinatorv1.Job, error) {
		return func(*nextClaim) (*coordinatorv1.Job, error) {
			return nil, w.fail(ctx, log, job, cause, true)
		}
	}
	if err := os.MkdirAll(w.cfg.ScratchDir, 0o755); err != nil {
		return failed(fmt.Errorf("scratch directory: %w", err))
	}
	ready := filepath.Join(w.cfg.ScratchDir, encodepod.ReadyFile)
	if err := os.WriteFile(ready, []byte(job.GetId()+"\n"), 0o644); err != nil {
		return failed(fmt.Errorf("write readiness file: %w", err))
	}
	dir, err := os.MkdirTemp(w.cfg.ScratchDir, "job-")
	if err != nil {
		return failed(fmt.Errorf("scratch directory: %w", err))
	}
	finish := w.execute(ctx, log, job, dir, stop)
	return func(next *nextClaim) (*coordinatorv1.Job, error) {
		defer os.RemoveAll(dir) //nolint:errcheck // best effort: ScratchDir (the pod's emptyDir, or the local executor's scratch directory) is removed after this process exits
		return finish(next)
	}
}

// claim waits for a job: one long poll of ClaimWait, or, for a pod of a
// pre-warmed pool (IdleWait longer than ClaimWait), long polls of
// ClaimWait one after another until IdleWait has passed. It answers nil, nil
// when there is no work: the wait passed, SIGTERM came, or the coordinator
// answered nothing at once (the pool is paused or this pod drained, so
// waiting on would only spin).
//
// first, when not nil, is the first poll, already made by the last
// report's claim (Reports), which answered no job: the wait is
// counted from its start, and its answer stands for that poll's.
//
// A coordinator that is stopping (a rolling update of the API) or not yet
// reachable answers Unavailable; the pod claims again, backing off, for as
// long as its wait lasts, so a warm pod stays warm across a restart.
func (w *Worker) claim(ctx context.Context, stop <-chan struct{}, first *poll) (*coordinatorv1.Job, error) {
	start := time.Now()
	if first != nil {
		start = first.began
	}
	idle := max(w.cfg.IdleWait, w.cfg.ClaimWait)
	retry := claimRetryMin
	for {
		var (
			job            *coordinatorv1.Job
			answeredAtOnce bool
			err            error
		)
		if first != nil {
			answeredAtOnce, first = first.atOnce, nil
		} else {
			job, answeredAtOnce, err = w.claimOnce(ctx, stop, w.pollWait(time.Since(start)))
		}
		if status.Code(err) == codes.Unavailable && time.Since(start)+retry < idle {
			w.log.InfoContext(ctx, "the coordinator is unavailable (stopping or not reachable yet); claiming again",
				slog.Duration("after", retry), slog.Any("error", err))
			select {
			case <-stop:
				return nil, nil
			case <-ctx.Done():
				return nil, fmt.Errorf("claim: %w", ctx.Err())
			case <-time.After(retry):
			}
			retry = min(2*retry, claimRetryMax)
			continue
		}
		if err != nil || job != nil {
			return job, err
		}
		if isStopped(stop) {
			return nil, nil
		}
		if answeredAtOnce || time.Since(start) >= idle {
			w.log.InfoContext(ctx, "no job to claim; exiting", slog.String("pool_id", w.cfg.Pool), slog.String("lane", w.cfg.Lane),
				slog.Duration("waited", time.Since(start).Round(time.Millisecond)))
			return nil, nil
		}
	}
}

// Back-off between claims while the coordinator is unavailable.
const (
	claimRetryMin = 250 * time.Millisecond
	claimRetryMax = 5 * time.Second
)

// cancelOnStop calls cancel when stop closes (SIGTERM), unless ctx (the
// context cancel ends) is done first. Run it on a goroutine of its own.
func cancelOnStop(ctx context.Context, stop <-chan struct{}, cancel context.CancelFunc) {
	select {
	case <-stop:
		cancel()
	case <-ctx.Done():
	}
}

// claimOnce is one long poll of up to wait; answeredAtOnce says the
// coordinator answered nothing in well under the wait.
func (w *Worker) claimOnce(ctx context.Context, stop <-chan struct{}, wait time.Duration) (job *coordinatorv1.Job, answeredAtOnce bool, err error) {
	if isStopped(stop) {
		return nil, false, nil // no claim once SIGTERM has come (a report's wait it ended, say)
	}
	claimCtx, cancelClaim := context.WithCancel(ctx)
	defer cancelClaim()
	go cancelOnStop(claimCtx, stop, cancelClaim)
	began := time.Now()
	resp, err := w.client.Claim(w.auth(claimCtx, ""), w.claimRequest(wait))
	if err != nil {
		if isStopped(stop) {
			return nil, false, nil // terminated while waiting: nothing was claimed
		}
		return nil, false, fmt.Errorf("claim: %w", err)
	}
	return resp.GetJob(), time.Since(began) < wait/2, nil
}

// pollWait is how long the next poll of a claim waits once the pod has
// waited for work for waited: ClaimWait (the longest poll when only
// IdleWait is set), at most what is left of the pod's wait.
func (w *Worker) pollWait(waited time.Duration) time.Duration {
	idle := max(w.cfg.IdleWait, w.cfg.ClaimWait)
	p := w.cfg.ClaimWait
	if w.cfg.IdleWait > w.cfg.ClaimWait && p == 0 {
		p = encodepod.MaxClaimWait // no claim wait: the longest poll, never a busy loop
	}
	if idle > 0 {
		p = max(0, min(p, idle-waited))
	}
	return p
}

// claimRequest is this pod's claim, waiting up to wait.
func (w *Worker) claimRequest(wait time.Duration) *coordinatorv1.ClaimRequest {
	return &coordinatorv1.ClaimRequest{
		Pool: w.cfg.Pool, Lane: w.cfg.Lane, Pod: w.cfg.Pod, Node: w.cfg.Node,
		WaitMs: int32(wait.Milliseconds()), Capabilities: &coordinatorv1.Capabilities{},
	}
}

func isStopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// execute runs a claimed job with a heartbeat alongside, up to its
// report, which it answers: the heartbeat goes on until the report is in.
// Cancellation and SIGTERM both stop FFmpeg (or the report) through
// jobCtx; a report that completed the job stands whatever came after.
func (w *Worker) execute(ctx context.Context, log *slog.Logger, job *coordinatorv1.Job, dir string, stop <-chan struct{}) (report func(next *nextClaim) (*coordinatorv1.Job, error)) {
	jobCtx, cancel := context.WithCancelCause(ctx)
	hb := &heartbeat{w: w, job: job}
	beatCtx, stopBeat := context.WithCancel(jobCtx) // the heartbeat's, until the completion answers (or cancel)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		hb.loop(beatCtx, cancel, stop, log)
	}()
	outputs, usage, err := w.work(jobCtx, log, job, dir, hb.setProgress)
	return func(next *nextClaim) (*coordinatorv1.Job, error) {
		var claimed *coordinatorv1.Job
		if err == nil {
			// Once the completion has answered, the job is over: its
			// heartbeat stops while the call waits for the next.
			claimed, err = w.complete(jobCtx, log, job, outputs, usage, next, stop, func() {
				stopBeat()
				wg.Wait()
				log.InfoContext(ctx, "job completed", slog.Int("outputs", len(outputs)), slog.Float64("encode_seconds", usage.GetEncodeSeconds()))
			})
		}
		stopBeat()
		cancel(nil)
		wg.Wait()
		if err == nil {
			if claimed != nil {
				log.InfoContext(ctx, "next job claimed by the report", slog.String("next_job_id", claimed.GetId()))
			}
			return claimed, nil
		}
		if _, split := errors.AsType[*splitDone](err); split {
			return nil, nil // the job's tasks are queued: the coordinator holds it now
		}
		switch cause := context.Cause(jobCtx); {
		case errors.Is(cause, ErrCancelled):
			log.InfoContext(ctx, "job was cancelled; FFmpeg stopped")
			return nil, nil
		case errors.Is(cause, ErrPreempted):
			return nil, w.preempt(log, job)
		}
		var in *ffmpeg.InputError
		var vf *verifyError
		switch {
		case errors.As(err, &in):
			return nil, w.fail(ctx, log, job, err, false)
		case errors.As(err, &vf):
			return nil, w.fail(ctx, log, job, err, job.GetAttempt() < 2) // retryable once
		}
		return nil, w.fail(ctx, log, job, err, true)
	}
}

// fail reports a failed attempt. The job's failure is not the pod's: it
// returns nil unless the coordinator could not be told.
func (w *Worker) fail(ctx context.Context, log *slog.Logger, job *coordinatorv1.Job, cause error, retryable bool) error {
	msg := strings.TrimSpace(cause.Error())
	log.WarnContext(ctx, "job failed", slog.String("error", msg), slog.Bool("retryable", retryable))
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err := w.client.Fail(w.auth(fctx, job.GetClaimToken()), &coordinatorv1.FailRequest{JobId: job.GetId(), Error: msg, Retryable: retryable})
	if status.Code(err) == codes.FailedPrecondition {
		// The job is no longer running: cancelled (or its split job
		// failed) between the last heartbeat and now. Nothing is ours to
		// report.
		log.InfoContext(ctx, "the job was cancelled or requeued meanwhile; its attempt is over", slog.String("coordinator", status.Convert(err).Message()))
		return nil
	}
	if err != nil {
		return fmt.Errorf("report failure of job %s: %w (its lease will lapse and stale job recovery will retry it)", job.GetId(), err)
	}
	return nil
}

// preempt hands the job back at once (SIGTERM: spot reclaim, drain).
func (w *Worker) preempt(log *slog.Logger, job *coordinatorv1.Job) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := w.client.Fail(w.auth(ctx, job.GetClaimToken()), &coordinatorv1.FailRequest{JobId: job.GetId(), Error: coordinatorv1.PreemptedError, Retryable: true})
	if err != nil {
		return fmt.Errorf("hand back job %s after SIGTERM: %w", job.GetId(), err)
	}
	log.Info("terminated: job handed back to the queue")
	return nil
}

// spec decodes and fits the job's encode spec to the probed source.
func parseSpec(raw []byte, in ffmpeg.MediaInfo) (encodespec.Spec, error) {
	spec, err := encodespec.Parse(raw)
	if err != nil {
		return encodespec.Spec{}, fmt.Errorf("the job's encode spec is invalid: %w", err)
	}
	return spec.ForSource(in.Width, in.Height), nil
}
