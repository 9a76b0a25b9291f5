package stack

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/objstore"
)

// versityGW is the S3 server the tests run: $VERSITYGW (make test sets it)
// or ~/.cache/mpegflow/tools/versitygw. Missing, the test fails.
func versityGW(t *testing.T) string {
	t.Helper()
	p := os.Getenv("VERSITYGW")
	if p == "" {
		p = filepath.Join("..", "..", "bin", "tools", "versitygw")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("versitygw not found at %s (%v): run `make tools`, or set VERSITYGW", p, err)
	}
	abs, err := filepath.Abs(p)
	require.NoError(t, err)
	return abs
}

func start(t *testing.T, dir string) (*Stack, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := Start(ctx, Options{Dir: dir, VersityGW: versityGW(t), StopGrace: 3 * time.Second})
	if err != nil {
		cancel()
		t.Fatalf("start dev stack: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		<-st.Done()
	})
	return st, cancel
}

// TestStackPersistsAcrossRestarts starts the three services, writes to each,
// stops them, checks that every process is gone, starts them again on the
// same directory and reads everything back.
func TestStackPersistsAcrossRestarts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := t.Context()

	st, stop := start(t, dir)
	require.Len(t, st.Services(), 3)
	for _, svc := range st.Services() {
		assert.FileExists(t, svc.Log)
	}

	conn, err := pgx.Connect(ctx, st.DatabaseURL)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `CREATE TABLE kept (v text); INSERT INTO kept VALUES ('across restarts')`)
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))

	ropts, err := redis.ParseURL(st.RedisURL)
	require.NoError(t, err)
	rdb := redis.NewClient(ropts)
	require.NoError(t, rdb.LPush(ctx, "mpegflow:queue:default", "job-1", "job-2").Err())
	require.NoError(t, rdb.Close())

	assert.Equal(t, DefaultBucket, st.S3.Bucket)
	objects, err := objstore.New(t.Context(), st.S3)
	require.NoError(t, err)
	put, err := objects.PresignPut(ctx, "inputs/a.txt", "text/plain")
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, put.URL, bytes.NewReader([]byte("hello")))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	creds, err := os.Stat(filepath.Join(dir, "s3-credentials.json"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), creds.Mode().Perm())

	pids := map[string]int{}
	for _, svc := range st.Services() {
		pids[svc.Name] = svc.PID
	}
	stop()
	select {
	case <-st.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("services did not stop within 20 s")
	}
	for name, pid := range pids {
		assert.False(t, alive(pid), "%s (pid %d) still runs after stop", name, pid)
	}

	st2, _ := start(t, dir)
	conn, err = pgx.Connect(ctx, st2.DatabaseURL)
	require.NoError(t, err)
	var v string
	require.NoError(t, conn.QueryRow(ctx, `SELECT v FROM kept`).Scan(&v))
	assert.Equal(t, "across restarts", v)
	require.NoError(t, conn.Close(ctx))

	ropts, err = redis.ParseURL(st2.RedisURL)
	require.NoError(t, err)
	rdb = redis.NewClient(ropts)
	defer rdb.Close()
	ids, err := rdb.LRange(ctx, "mpegflow:queue:default", 0, -1).Result()
	require.NoError(t, err)
	assert.Equal(t, []string{"job-2", "job-1"}, ids)

	objects, err = objstore.New(t.Context(), st2.S3)
	require.NoError(t, err)
	get, err := objects.PresignGet(ctx, "inputs/a.txt")
	require.NoError(t, err)
	resp, err = http.Get(get.URL)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "hello", string(body))
	// The same key and passwords work, and the ports of the first run were
	// free again.
	assert.Equal(t, st.S3.AccessKeyID, st2.S3.AccessKeyID)
	assert.Equal(t, st.S3.Endpoint, st2.S3.Endpoint)
	assert.Equal(t, st.DatabaseURL, st2.DatabaseURL)
	assert.Equal(t, st.RedisURL, st2.RedisURL)
}

func TestGivenServicesAreNotStarted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	s3 := objstore.Config{Endpoint: "http://s3.example", Bucket: "b"}
	st, err := Start(ctx, Options{Dir: dir, DatabaseURL: "postgres://db.example/x", RedisURL: "redis://redis.example/0", S3: &s3})
	require.NoError(t, err)
	assert.Empty(t, st.Services())
	assert.Equal(t, "postgres://db.example/x", st.DatabaseURL)
	assert.Equal(t, "redis://redis.example/0", st.RedisURL)
	assert.Equal(t, s3, st.S3)
	cancel()
	<-st.Done()
}

func TestOneStackPerDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s3 := objstore.Config{Bucket: "b"}
	opts := Options{Dir: dir, DatabaseURL: "postgres://x", RedisURL: "redis://x", S3: &s3}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := Start(ctx, opts)
	require.NoError(t, err)
	_, err = Start(context.Background(), opts)
	require.ErrorContains(t, err, "another mpegflow dev is running")
	cancel()
	<-st.Done()
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	st, err = Start(ctx2, opts)
	require.NoError(t, err, "the lock is released when the stack stops")
	cancel2()
	<-st.Done()
}

// TestLeftoverIsStoppedOnlyWhenItIsOurs: a process recorded in a pid file
// is stopped when it runs in the data directory, and left alone otherwise
// (a recycled pid).
func TestLeftoverIsStoppedOnlyWhenItIsOurs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	other := t.TempDir()
	run := func(cwd string) *exec.Cmd {
		cmd := exec.Command("sleep", "60")
		cmd.Dir = cwd
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	stranger := run(other)
	pidFile := filepath.Join(dir, "x.pid")
	require.NoError(t, os.WriteFile(pidFile, []byte(strconv.Itoa(stranger.Process.Pid)+"\n"), 0o644))
	pid, err := stopLeftover("x", dir, syscall.SIGTERM, time.Second, pidFile)
	require.NoError(t, err)
	assert.Zero(t, pid)
	assert.True(t, alive(stranger.Process.Pid))

	ours := run(dir)
	exited := make(chan error, 1)
	go func() { exited <- ours.Wait() }()
	require.NoError(t, os.WriteFile(pidFile, []byte(strconv.Itoa(ours.Process.Pid)+"\n"), 0o644))
	pid, err = stopLeftover("x", dir, syscall.SIGTERM, 5*time.Second, pidFile)
	require.NoError(t, err)
	assert.Equal(t, ours.Process.Pid, pid)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("leftover was not stopped")
	}
	assert.NoFileExists(t, pidFile)
}

func TestStateFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s1, err := ServerSecret(dir)
	require.NoError(t, err)
	s2, err := ServerSecret(dir)
	require.NoError(t, err)
	assert.Equal(t, s1, s2)
	assert.GreaterOrEqual(t, len(s1), 32)
	fi, err := os.Stat(filepath.Join(dir, ServerSecretFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	_, ok, err := ReadOwnerKey(dir)
	require.NoError(t, err)
	assert.False(t, ok)
	require.NoError(t, WriteOwnerKey(dir, "mfk_x"))
	key, ok, err := ReadOwnerKey(dir)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "mfk_x", key)
	fi, err = os.Stat(filepath.Join(dir, OwnerKeyFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	_, err = ReadInfo(dir)
	require.ErrorContains(t, err, "start `mpegflow dev")
	require.NoError(t, WriteInfo(dir, Info{Server: "http://127.0.0.1:1"}))
	info, err := ReadInfo(dir)
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:1", info.Server)
}
