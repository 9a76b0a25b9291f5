package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/mpegflow/mpegflow/internal/objstore"
)

// s3Credentials are the private S3 store's root credentials, generated on
// the first run and kept in DATA/s3-credentials.json (mode 0600).
type s3Credentials struct {
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
}

// startS3 runs versitygw's posix backend over DATA/s3 (objects are files,
// metadata sits in DATA/meta/s3) and creates the bucket. versitygw checks
// SigV4 signatures like S3, so presigned URLs behave as in production.
func (s *Stack) startS3(ctx context.Context, pp *portPicker, prefer int) (objstore.Config, int, error) {
	bin, err := FindVersityGW(s.opts.VersityGW)
	if err != nil {
		return objstore.Config{}, 0, err
	}
	creds, err := s.s3Credentials()
	if err != nil {
		return objstore.Config{}, 0, err
	}
	// versitygw rejects a sidecar whose path merely starts with the root's
	// (DATA/s3-meta next to DATA/s3), hence DATA/meta/s3.
	root, meta := s.path("s3"), s.path("meta", "s3")
	for _, d := range []string{root, meta} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return objstore.Config{}, 0, fmt.Errorf("devstack: create %s: %w", d, err)
		}
	}
	if _, err := stopLeftover("s3", root, syscall.SIGTERM, s.opts.StopGrace, s.path("run", "s3.pid")); err != nil {
		return objstore.Config{}, 0, fmt.Errorf("devstack: %w", err)
	}
	start := func(port int) (*proc, error) {
		return startProc(procSpec{
			name: "s3", path: bin,
			args: []string{"--port", "127.0.0.1:" + strconv.Itoa(port), "--health", "/health", "--quiet",
				"posix", "--sidecar", meta, root},
			// Credentials travel in the environment, not in ps's view.
			env: childEnv([]string{"ROOT_*", "VGW_*"}, "ROOT_ACCESS_KEY_ID="+creds.AccessKeyID, "ROOT_SECRET_ACCESS_KEY="+creds.SecretAccessKey),
			dir: root, logPath: s.path("logs", "s3.log"), stopSig: syscall.SIGTERM, pidFile: s.path("run", "s3.pid"),
		})
	}
	ready := func(ctx context.Context, _ *proc, port int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/health", port), nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("health answered %s", resp.Status)
		}
		return nil
	}
	taken := func(out string) bool { return strings.Contains(strings.ToLower(out), "address already in use") }
	_, port, err := s.launch(ctx, "s3", s.opts.S3Port, prefer, pp, start, ready, taken)
	if err != nil {
		return objstore.Config{}, 0, err
	}
	cfg := objstore.Config{
		Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), Region: "us-east-1", Bucket: s.opts.Bucket,
		AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, PathStyle: true, PresignTTL: s.opts.PresignTTL,
	}
	objects, err := objstore.New(ctx, cfg)
	if err != nil {
		return objstore.Config{}, 0, fmt.Errorf("devstack: %w", err)
	}
	if err := objects.EnsureBucket(ctx); err != nil {
		return objstore.Config{}, 0, fmt.Errorf("devstack: create bucket %s: %w", s.opts.Bucket, err)
	}
	return cfg, port, nil
}

func (s *Stack) s3Credentials() (s3Credentials, error) {
	path := s.path("s3-credentials.json")
	var c s3Credentials
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &c); err != nil || c.AccessKeyID == "" || c.SecretAccessKey == "" {
			return c, fmt.Errorf("devstack: %s is damaged: restore it, or delete it together with %s (the stored objects stay readable only with the old key)", path, s.path("s3"))
		}
		return c, nil
	case !errors.Is(err, fs.ErrNotExist):
		return c, fmt.Errorf("devstack: read %s: %w", path, err)
	}
	c = s3Credentials{AccessKeyID: "mpegflow" + randomHex(6), SecretAccessKey: randomHex(20)}
	b, err = json.MarshalIndent(c, "", "  ")
	if err != nil {
		return c, fmt.Errorf("devstack: encode S3 credentials: %w", err)
	}
	if err := writeFileAtomic(path, append(b, '\n'), 0o600); err != nil {
		return c, fmt.Errorf("devstack: %w", err)
	}
	return c, nil
}

// FindVersityGW locates the versitygw binary: explicit, else
// $MPEGFLOW_VERSITYGW, else next to the running executable, else on PATH,
// else the cache `make tools` builds it into ($XDG_CACHE_HOME/mpegflow/tools,
// else ~/.cache/mpegflow/tools).
func FindVersityGW(explicit string) (string, error) {
	var tried []string
	isExec := func(p string) bool {
		tried = append(tried, p)
		fi, err := os.Stat(p)
		return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
	}
	for _, p := range []string{explicit, os.Getenv("MPEGFLOW_VERSITYGW")} {
		if p != "" {
			if isExec(p) {
				return filepath.Abs(p)
			}
			return "", fmt.Errorf("devstack: versitygw not found at %s", p)
		}
	}
	if exe, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(exe), "versitygw"); isExec(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return filepath.Abs(p)
	}
	tried = append(tried, "PATH")
	if dir, err := os.UserCacheDir(); err == nil {
		if p := filepath.Join(dir, "mpegflow", "tools", "versitygw"); isExec(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("devstack: the S3 server versitygw was not found (looked in %s): run `make tools` "+
		"(it builds into ~/.cache/mpegflow/tools), set MPEGFLOW_VERSITYGW to it, put it next to the mpegflow binary, or set S3_BUCKET and S3_ENDPOINT to use your own S3",
		strings.Join(tried, ", "))
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// writeFileAtomic writes path through a temporary file and a rename, so a
// crash leaves the old content or the new, never half of it.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // best effort: on success the file was renamed away, on failure the error that matters is returned
	if err := tmp.Chmod(mode); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
