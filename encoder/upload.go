package encoder

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

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

// complete reports success, claiming the pod's next job with next when it
// is not nil (CompleteRequest.next): it answers that job, or nil when none
// was queued or the claim failed (the pod then claims with Claim).
func (w *Worker) complete(ctx context.Context, log *slog.Logger, job *coordinatorv1.Job, outs []*coordinatorv1.Output, usage *coordinatorv1.Usage, next *coordinatorv1.ClaimRequest) (*coordinatorv1.Job, error) {
	resp, err := w.client.Complete(w.auth(ctx, job.GetClaimToken()), &coordinatorv1.CompleteRequest{JobId: job.GetId(), Outputs: outs, Usage: usage, Next: next})
	if err != nil {
		return nil, fmt.Errorf("complete: %w", err)
	}
	if msg := resp.GetNextError(); msg != "" {
		log.WarnContext(ctx, "the job completed but claiming the next with it failed; claiming again", slog.String("coordinator", msg))
	}
	return resp.GetNext().GetJob(), nil
}
