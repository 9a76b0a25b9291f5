package encoder

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	"github.com/mpegflow/mpegflow/encoder/ffmpeg"
)

const presignBatch = 1000

// upload asks the coordinator for presigned PUTs (the pod holds no storage
// credentials) and sends every file, a few at a time.
func (w *Worker) upload(ctx context.Context, job *coordinatorv1.Job, dir string, files []ffmpeg.Output) error {
	for start := 0; start < len(files); start += presignBatch {
		batch := files[start:min(start+presignBatch, len(files))]
		req := &coordinatorv1.PresignOutputsRequest{JobId: job.GetId()}
		for _, f := range batch {
			req.Files = append(req.Files, &coordinatorv1.OutputFile{Name: f.Name, ContentType: f.ContentType})
		}
		resp, err := w.client.PresignOutputs(w.auth(ctx, job.GetClaimToken()), req)
		if err != nil {
			return fmt.Errorf("presign outputs: %w", err)
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(w.cfg.UploadConcurrency)
		for _, u := range resp.GetUploads() {
			g.Go(func() error { return w.put(gctx, filepath.Join(dir, filepath.FromSlash(u.GetName())), u) })
		}
		if err := g.Wait(); err != nil {
			return err
		}
	}
	return nil
}

func (w *Worker) put(ctx context.Context, path string, u *coordinatorv1.PresignedUpload) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("upload %s: %w", u.GetName(), err)
	}
	defer f.Close() //nolint:errcheck // opened read-only: closing loses nothing
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("upload %s: %w", u.GetName(), err)
	}
	method := u.GetMethod()
	if method == "" {
		method = http.MethodPut
	}
	req, err := http.NewRequestWithContext(ctx, method, u.GetUrl(), f)
	if err != nil {
		return fmt.Errorf("upload %s: %w", u.GetName(), err)
	}
	req.ContentLength = st.Size()
	for k, v := range u.GetHeaders() {
		req.Header.Set(k, v)
	}
	resp, err := w.cfg.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("upload %s: %w", u.GetName(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("upload %s: storage answered %s: %s", u.GetName(), resp.Status, body)
	}
	return nil
}

// complete reports success, and calls completed once the coordinator has
// recorded it (the job is over). With next (the pod may run another job) it
// claims that job in the same call: with Complete when next waits for
// nothing (wait_ms 0: only while the completion commits), else as a
// report on the pod's stream of reports (Reports: a CompleteThenClaim
// each), whose first message answers the completion and whose next job
// comes with it or, when none was queued, after waiting as a poll of the
// pod's claim would (SIGTERM ends that wait, and the stream). It answers
// the next job, or nil when none came or the claim failed: the pod then
// claims with Claim, after the poll next records (nextClaim.polled). An
// error is the completion's.
func (w *Worker) complete(ctx context.Context, log *slog.Logger, job *coordinatorv1.Job, outs []*coordinatorv1.Output, usage *coordinatorv1.Usage,
	next *nextClaim, stop <-chan struct{}, completed func()) (*coordinatorv1.Job, error) {
	req := &coordinatorv1.CompleteRequest{JobId: job.GetId(), Outputs: outs, Usage: usage}
	if next != nil {
		req.Next = next.req
	}
	if next == nil || next.req.GetWaitMs() == 0 {
		// No claim, or one that waits only while the completion commits:
		// Complete answers both in one message.
		resp, err := w.client.Complete(w.auth(ctx, job.GetClaimToken()), req)
		if err != nil {
			return nil, fmt.Errorf("complete: %w", err)
		}
		completed()
		if msg := resp.GetNextError(); msg != "" {
			warnNextFailed(ctx, log, slog.String("coordinator", msg))
		}
		if next != nil {
			next.queued = resp.GetNext().GetJob() != nil
		}
		return resp.GetNext().GetJob(), nil
	}
	r, fresh, err := w.reports(ctx)
	var resp *coordinatorv1.CompleteResponse
	if err == nil {
		resp, err = r.report(ctx, job.GetClaimToken(), req)
		if err != nil && !fresh && reportAgain(err) {
			w.dropReports()
			if r, _, err = w.reports(ctx); err == nil {
				resp, err = r.report(ctx, job.GetClaimToken(), req)
			}
		}
	}
	if err != nil {
		w.dropReports()
		return nil, fmt.Errorf("complete: %w", err)
	}
	completed()
	began := time.Now()
	claimed, failed := resp.GetNext().GetJob(), resp.GetNextError()
	next.queued = claimed != nil
	waited := claimed == nil && failed == ""
	if waited {
		// A second message answers the claim; SIGTERM, from now on the
		// claim's alone, ends its wait, and the stream with it.
		waitCtx, waitDone := context.WithCancel(ctx)
		go cancelOnStop(waitCtx, stop, r.cancel)
		resp, err = r.stream.Recv()
		waitDone()
		if err != nil {
			w.dropReports() // an error ends the stream
		} else {
			claimed, failed = resp.GetNext().GetJob(), resp.GetNextError()
		}
	}
	switch {
	case claimed != nil:
	case failed != "":
		warnNextFailed(ctx, log, slog.String("coordinator", failed))
	case err != nil:
		if !isStopped(stop) {
			warnNextFailed(ctx, log, slog.Any("error", err))
		}
	case waited:
		next.poll = &poll{began: began, atOnce: time.Since(began) < time.Duration(next.req.GetWaitMs())*time.Millisecond/2}
	}
	return claimed, nil
}

// warnNextFailed logs that a report's claim of the next job failed (why:
// the coordinator's message, or the call's error); the pod claims again.
func warnNextFailed(ctx context.Context, log *slog.Logger, why slog.Attr) {
	log.WarnContext(ctx, "the job completed but claiming the next with it failed; claiming again", why)
}

// nextClaim is the claim a report makes of the pod's next job.
type nextClaim struct {
	req *coordinatorv1.ClaimRequest
	// queued says the claim found a job queued while the completion
	// committed (the pod's next report then expects one too).
	queued bool
	// poll is the poll it made, when it waited for work and none came.
	poll *poll
}

// polled is the poll the claim made (nil: none, or no claim).
func (n *nextClaim) polled() *poll {
	if n == nil {
		return nil
	}
	return n.poll
}

// poll is one poll of a claim that answered no job: when it began, and
// whether it answered in well under its wait (the pool paused, the pod
// drained).
type poll struct {
	began  time.Time
	atOnce bool
}
