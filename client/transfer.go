package client

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// StorageError is object storage refusing a presigned transfer, with the
// S3 error code (SignatureDoesNotMatch, AccessDenied, NoSuchKey…).
type StorageError struct {
	Op      string // "upload" or "download"
	Status  int
	Code    string
	Message string
}

// Error is one line; an expired URL says to ask the API for a fresh one.
func (e *StorageError) Error() string {
	msg := fmt.Sprintf("%s refused by storage: %d", e.Op, e.Status)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if strings.Contains(strings.ToLower(e.Message), "expired") {
		msg += "; the presigned URL expired, request a new one"
	}
	return oneLine(msg)
}

func storageError(op string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	var x struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	if xml.Unmarshal(body, &x) != nil || (x.Code == "" && x.Message == "") {
		x.Message = firstLine(string(body), 200)
	}
	return &StorageError{Op: op, Status: resp.StatusCode, Code: x.Code, Message: x.Message}
}

func transferError(op, rawURL string, err error) error {
	host := rawURL
	if u, perr := url.Parse(rawURL); perr == nil {
		host = u.Scheme + "://" + u.Host
	}
	var dns *net.DNSError
	if errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &dns) {
		return fmt.Errorf("%s: storage unreachable at %s: %s", op, host, reason(err))
	}
	return fmt.Errorf("%s: the connection to storage at %s failed: %s", op, host, reason(err))
}

// UploadAsset sends f to the asset's presigned PUT (a from CreateAsset):
// exactly the asset's declared SizeBytes, which the URL's signature binds.
// A file whose size changed since the asset was created is refused here,
// before anything is sent (storage would refuse it as
// SignatureDoesNotMatch). progress works as in UploadFile. An asset above
// the server's multipart threshold (a.Multipart) goes up in parts, a few at
// once, and is completed; if that fails, ResumeUpload sends what is missing.
func (c *Client) UploadAsset(ctx context.Context, a Asset, f *os.File, progress io.Writer) error {
	if a.Multipart != nil && a.SizeBytes != nil {
		_, err := c.uploadMultipart(ctx, a, f, progress)
		return err
	}
	if a.Upload == nil {
		return fmt.Errorf("upload %s: asset %s has no upload URL (only CreateAsset returns one)", f.Name(), a.ID)
	}
	if a.SizeBytes == nil {
		return fmt.Errorf("upload %s: asset %s declares no size", f.Name(), a.ID)
	}
	return c.upload(ctx, a.Upload.URL, a.ContentType, f, *a.SizeBytes, progress)
}

// UploadFile sends f to a presigned PUT with the content type the URL was
// signed for; its length is the file's size. progress, when not nil, is
// written every byte as it is sent, so a progress bar (an io.Writer that
// counts) can follow the upload.
func (c *Client) UploadFile(ctx context.Context, presignedURL, contentType string, f *os.File, progress io.Writer) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("upload %s: %w", f.Name(), err)
	}
	return c.upload(ctx, presignedURL, contentType, f, st.Size(), progress)
}

// upload sends exactly size bytes of f, which must be a regular file of
// that size.
func (c *Client) upload(ctx context.Context, presignedURL, contentType string, f *os.File, size int64, progress io.Writer) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("upload %s: %w", f.Name(), err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("upload %s: not a regular file", f.Name())
	}
	if st.Size() != size {
		return fmt.Errorf("upload %s: the file has %d bytes but the upload URL admits exactly %d (did it change?); create a new asset", f.Name(), st.Size(), size)
	}
	// A file that grows meanwhile still sends size bytes; one that shrinks
	// fails the request (the body ends before its Content-Length).
	body := io.LimitReader(f, size)
	if progress != nil {
		body = io.TeeReader(body, progress)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, presignedURL, io.NopCloser(body))
	if err != nil {
		return fmt.Errorf("upload %s: %w", f.Name(), err)
	}
	req.ContentLength = size
	if size == 0 {
		req.Body = http.NoBody
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return transferError("upload "+filepath.Base(f.Name()), presignedURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return storageError("upload", resp)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return nil
}

// Fetch copies the object behind a presigned GET into w and returns the
// number of bytes written.
func (c *Client) Fetch(ctx context.Context, presignedURL string, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, presignedURL, nil)
	if err != nil {
		return 0, fmt.Errorf("download: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return 0, ctxErr
		}
		return 0, transferError("download", presignedURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, storageError("download", resp)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("download: %w", err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("download: got %d of %d bytes", n, resp.ContentLength)
	}
	return n, nil
}

// Download saves the object behind a presigned GET as dst, creating its
// directory. The file appears complete or not at all: bytes go to a
// temporary file next to dst that is renamed when the transfer succeeds.
func (c *Client) Download(ctx context.Context, presignedURL, dst string) (int64, error) {
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("download to %s: %w", dst, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".*.part")
	if err != nil {
		return 0, fmt.Errorf("download to %s: %w", dst, err)
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // best effort: on success the file was renamed away, on failure the error that matters is returned
	n, err := c.Fetch(ctx, presignedURL, tmp)
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("download to %s: %w", dst, cerr)
	}
	if err != nil {
		return n, err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return n, fmt.Errorf("download to %s: %w", dst, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return n, fmt.Errorf("download to %s: %w", dst, err)
	}
	return n, nil
}
