package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/mpegflow/mpegflow/client"
)

// uploadState remembers the asset of a multipart upload under way, so that
// uploading the same file again resumes it. It lives in the user's cache
// directory ($XDG_CACHE_HOME/mpegflow/uploads), one file per server, file
// path, size and modification time: a file that changed starts afresh.
type uploadState struct {
	Server  string `json:"server"`
	File    string `json:"file"`
	AssetID string `json:"asset_id"`
}

// uploadStatePath is where the state of uploading f (st) to server lives.
func uploadStatePath(server string, f *os.File, st os.FileInfo) (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find the cache directory for upload state: %w", err)
	}
	abs, err := filepath.Abs(f.Name())
	if err != nil {
		return "", fmt.Errorf("upload state of %s: %w", f.Name(), err)
	}
	h := sha256.Sum256([]byte(server + "\x00" + abs + "\x00" + strconv.FormatInt(st.Size(), 10) + "\x00" + strconv.FormatInt(st.ModTime().UnixNano(), 10)))
	return filepath.Join(dir, "mpegflow", "uploads", hex.EncodeToString(h[:16])+".json"), nil
}

func readUploadState(path string) (uploadState, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return uploadState{}, false
	}
	var s uploadState
	if json.Unmarshal(b, &s) != nil || s.AssetID == "" {
		return uploadState{}, false
	}
	return s, true
}

func writeUploadState(path string, s uploadState) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save upload state: %w", err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("save upload state: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("save upload state: %w", err)
	}
	return nil
}

// uploadResumable stores f as an asset and returns its id. A file above
// the server's multipart threshold goes up in parts; its asset is
// remembered until the upload completes, so running the same upload again
// after an interruption (network lost, Ctrl-C) resumes it: the server says
// which parts storage holds and only the others are sent. A progress bar
// goes to errw when it is a terminal.
func uploadResumable(ctx context.Context, c *client.Client, f *os.File, errw io.Writer) (string, error) {
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("upload %s: %w", f.Name(), err)
	}
	name := filepath.Base(f.Name())
	size := st.Size()
	statePath, err := uploadStatePath(c.Server(), f, st)
	if err != nil {
		return "", err
	}
	progress := func() (io.Writer, func()) {
		if !isTerminal(errw) {
			return nil, func() {}
		}
		bar := byteBar(errw, size, "uploading "+name)
		return bar, func() { _ = bar.Close() }
	}
	if s, ok := readUploadState(statePath); ok {
		a, err := c.GetAsset(ctx, s.AssetID)
		// ResumeUpload also takes an upload that completed while this
		// command did not hear it (cut off as the server joined the parts).
		if err == nil && (a.UploadStatus == "uploading" || a.UploadStatus == "uploaded") {
			fmt.Fprintf(errw, "resuming the upload of %s (asset %s)\n", name, a.ID)
			w, done := progress()
			_, err := c.ResumeUpload(ctx, a.ID, f, w)
			done()
			if err != nil {
				return "", fmt.Errorf("%w; run the same command again to resume", err)
			}
			_ = os.Remove(statePath)
			return a.ID, nil
		}
		var apiErr *client.Error
		gone := errors.As(err, &apiErr) && apiErr.Status == 404
		if err != nil && !gone {
			return "", fmt.Errorf("resume the upload of %s (asset %s): %w", name, s.AssetID, err)
		}
		_ = os.Remove(statePath) // gone, finished or aborted: start afresh
	}
	a, err := c.CreateAsset(ctx, client.AssetRequest{Filename: name, ContentType: contentType(f.Name()), SizeBytes: &size})
	if err != nil {
		return "", fmt.Errorf("create asset for %s: %w", f.Name(), err)
	}
	if a.Upload == nil && a.Multipart == nil {
		return "", fmt.Errorf("create asset for %s: the server gave no upload URL", f.Name())
	}
	if a.Multipart != nil {
		if err := writeUploadState(statePath, uploadState{Server: c.Server(), File: f.Name(), AssetID: a.ID}); err != nil {
			fmt.Fprintf(errw, "warning: %v; an interrupted upload will start over\n", err)
		}
	}
	w, done := progress()
	err = c.UploadAsset(ctx, a, f, w)
	done()
	if err != nil {
		if a.Multipart != nil {
			return "", fmt.Errorf("%w; run the same command again to resume (asset %s)", err, a.ID)
		}
		return "", err
	}
	_ = os.Remove(statePath)
	return a.ID, nil
}
