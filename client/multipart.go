package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

// partAttempts is how often one part is sent (with a fresh URL each time)
// before the upload gives up; an upload that gave up can be resumed.
const partAttempts = 3

// PresignParts returns URLs for some parts of an asset's multipart upload
// (at most apiv1.MaxPresignParts at once).
func (c *Client) PresignParts(ctx context.Context, assetID string, numbers []int) ([]apiv1.PresignedPart, error) {
	var out apiv1.PresignedParts
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/assets/" + url.PathEscape(assetID) + "/upload/parts",
		body: apiv1.PresignPartsRequest{PartNumbers: numbers}, out: &out})
	return out.Parts, err
}

// UploadedParts lists every part storage holds of an asset's multipart
// upload, in order, reading every page.
func (c *Client) UploadedParts(ctx context.Context, assetID string) ([]apiv1.UploadedPart, error) {
	var all []apiv1.UploadedPart
	cursor := ""
	for {
		q := url.Values{}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page apiv1.UploadedParts
		if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/assets/" + url.PathEscape(assetID) + "/upload/parts", query: q, out: &page}); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if cursor = page.NextCursor; cursor == "" {
			return all, nil
		}
	}
}

// CompleteUpload joins the uploaded parts (every one, in order, with the
// ETag storage answered) into the asset's content.
func (c *Client) CompleteUpload(ctx context.Context, assetID string, parts []apiv1.CompletedPart) (Asset, error) {
	var a Asset
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/assets/" + url.PathEscape(assetID) + "/upload/complete",
		body: apiv1.CompleteUploadRequest{Parts: parts}, out: &a})
	return a, err
}

// AbortUpload aborts an asset's multipart upload; storage discards its parts.
func (c *Client) AbortUpload(ctx context.Context, assetID string) (Asset, error) {
	var a Asset
	err := c.do(ctx, call{method: http.MethodDelete, path: "/v1/assets/" + url.PathEscape(assetID) + "/upload", out: &a})
	return a, err
}

// ResumeUpload finishes the multipart upload of asset id from f: it asks
// the server which parts storage already holds, sends the others and
// completes the upload. f must be the file the upload began with (same
// size); parts already stored are not checked against it beyond their
// size. progress is credited with the stored parts' bytes at once (through
// Add64 when it has one, as a progress bar does).
func (c *Client) ResumeUpload(ctx context.Context, id string, f *os.File, progress io.Writer) (Asset, error) {
	a, err := c.GetAsset(ctx, id)
	if err != nil {
		return Asset{}, err
	}
	if a.UploadStatus == "uploaded" && a.SizeBytes != nil {
		// Completed, and its answer lost: done, if it is this file's size.
		if st, err := f.Stat(); err == nil && st.Size() == *a.SizeBytes {
			credit(progress, st.Size())
			return a, nil
		}
	}
	if a.UploadStatus != "uploading" || a.PartSize == nil || a.SizeBytes == nil {
		return Asset{}, fmt.Errorf("resume upload of asset %s: it has no open multipart upload (status %q)", id, a.UploadStatus)
	}
	return c.uploadParts(ctx, a, *a.PartSize, nil, f, progress, true)
}

// uploadMultipart sends f in parts for an asset CreateAsset answered with
// a multipart upload, and completes it.
func (c *Client) uploadMultipart(ctx context.Context, a Asset, f *os.File, progress io.Writer) (Asset, error) {
	return c.uploadParts(ctx, a, a.Multipart.PartSize, a.Multipart.Parts, f, progress, false)
}

// uploadParts sends the parts of a's upload that storage does not hold
// (all of them unless resume), a few at once, then completes the upload.
// urls are presigned parts already in hand; the others are asked for in
// batches.
func (c *Client) uploadParts(ctx context.Context, a Asset, partSize int64, urls []apiv1.PresignedPart, f *os.File, progress io.Writer, resume bool) (Asset, error) {
	name := filepath.Base(f.Name())
	size := *a.SizeBytes
	st, err := f.Stat()
	if err != nil {
		return Asset{}, fmt.Errorf("upload %s: %w", name, err)
	}
	if !st.Mode().IsRegular() {
		return Asset{}, fmt.Errorf("upload %s: not a regular file", name)
	}
	if st.Size() != size {
		return Asset{}, fmt.Errorf("upload %s: the file has %d bytes but asset %s was created for %d (did it change?); create a new asset", name, st.Size(), a.ID, size)
	}
	count := int((size + partSize - 1) / partSize)
	partBytes := func(n int) int64 { return min(partSize, size-int64(n-1)*partSize) }
	etags := make([]string, count+1)
	if resume {
		stored, err := c.UploadedParts(ctx, a.ID)
		if err != nil {
			// An earlier completion may have joined the parts after all (the
			// server records that when it finds them joined): then the
			// upload is done.
			var apiErr *Error
			if errors.As(err, &apiErr) && apiErr.Status == http.StatusConflict {
				if now, gerr := c.GetAsset(ctx, a.ID); gerr == nil && now.UploadStatus == "uploaded" {
					credit(progress, size)
					return now, nil
				}
			}
			return Asset{}, fmt.Errorf("upload %s: list the parts already stored: %w", name, err)
		}
		var have int64
		for _, p := range stored {
			if p.PartNumber >= 1 && p.PartNumber <= count && p.SizeBytes == partBytes(p.PartNumber) {
				etags[p.PartNumber] = p.ETag
				have += p.SizeBytes
			}
		}
		credit(progress, have)
	}
	var missing []int
	for n := 1; n <= count; n++ {
		if etags[n] == "" {
			missing = append(missing, n)
		}
	}
	ready := map[int]apiv1.PresignedPart{}
	for _, u := range urls {
		ready[u.PartNumber] = u
	}
	var mu sync.Mutex // guards progress and etags
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.cfg.PartConcurrency)
	for batch := range slices.Chunk(missing, apiv1.MaxPresignParts) {
		var ask []int
		for _, n := range batch {
			if _, ok := ready[n]; !ok {
				ask = append(ask, n)
			}
		}
		if len(ask) > 0 {
			got, err := c.PresignParts(gctx, a.ID, ask)
			if err != nil {
				_ = g.Wait()
				return Asset{}, fmt.Errorf("upload %s: presign parts: %w", name, err)
			}
			for _, u := range got {
				ready[u.PartNumber] = u
			}
		}
		for _, n := range batch {
			u := ready[n]
			g.Go(func() error {
				etag, err := c.sendPart(gctx, a.ID, f, u, partSize, &mu, progress)
				if err != nil {
					return fmt.Errorf("upload %s: part %d of %d: %w", name, n, count, err)
				}
				mu.Lock()
				etags[n] = etag
				mu.Unlock()
				return nil
			})
		}
		if gctx.Err() != nil {
			break
		}
	}
	if err := g.Wait(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return Asset{}, ctxErr
		}
		return Asset{}, err
	}
	parts := make([]apiv1.CompletedPart, count)
	for n := 1; n <= count; n++ {
		parts[n-1] = apiv1.CompletedPart{PartNumber: n, ETag: etags[n]}
	}
	done, err := c.CompleteUpload(ctx, a.ID, parts)
	if err != nil {
		return Asset{}, fmt.Errorf("upload %s: complete: %w", name, err)
	}
	return done, nil
}

// sendPart PUTs one part of f to its presigned URL and returns the ETag
// storage answered; a failed attempt is retried with a fresh URL.
func (c *Client) sendPart(ctx context.Context, assetID string, f *os.File, u apiv1.PresignedPart, partSize int64, mu *sync.Mutex, progress io.Writer) (string, error) {
	var last error
	for attempt := range partAttempts {
		if attempt > 0 {
			fresh, err := c.PresignParts(ctx, assetID, []int{u.PartNumber})
			if err != nil || len(fresh) != 1 {
				return "", errors.Join(last, err)
			}
			u = fresh[0]
		}
		var body io.Reader = io.NewSectionReader(f, int64(u.PartNumber-1)*partSize, u.SizeBytes)
		if progress != nil {
			body = io.TeeReader(body, lockedWriter{mu, progress})
		}
		req, err := http.NewRequestWithContext(ctx, u.Method, u.URL, io.NopCloser(body))
		if err != nil {
			return "", err
		}
		req.ContentLength = u.SizeBytes
		resp, err := c.http.Do(req)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return "", ctxErr
			}
			last = transferError("upload part", u.URL, err)
			continue
		}
		if resp.StatusCode/100 != 2 {
			last = storageError("upload", resp)
			resp.Body.Close()
			continue
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if etag := resp.Header.Get("ETag"); etag != "" {
			return etag, nil
		}
		last = errors.New("storage answered no ETag (a CORS or proxy setting that hides it?)")
	}
	return "", last
}

// lockedWriter serializes writes of parts sent at once to one progress writer.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// credit tells progress that n bytes are done without sending them.
func credit(progress io.Writer, n int64) {
	if progress == nil || n <= 0 {
		return
	}
	if a, ok := progress.(interface{ Add64(int64) error }); ok {
		_ = a.Add64(n)
		return
	}
	zeros := make([]byte, 32<<10)
	for n > 0 {
		k := min(n, int64(len(zeros)))
		_, _ = progress.Write(zeros[:k])
		n -= k
	}
}
