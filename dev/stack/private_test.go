package stack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/objstore"
)

// startWith starts a stack with opts (S3 given, so no versitygw runs) and
// stops it when the test ends; log collects the stack's messages.
func startWith(t *testing.T, opts Options) (st *Stack, log *bytes.Buffer, stop func()) {
	t.Helper()
	log = &bytes.Buffer{}
	opts.Log = slog.New(slog.NewTextHandler(log, nil))
	opts.StopGrace = 3 * time.Second
	opts.S3 = &objstore.Config{Bucket: "b"}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := Start(ctx, opts)
	if err != nil {
		cancel()
		t.Fatalf("start dev stack: %v", err)
	}
	stop = func() {
		cancel()
		<-st.Done()
	}
	t.Cleanup(stop)
	return st, log, stop
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

func requireMode(t *testing.T, want os.FileMode, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, want, fi.Mode().Perm(), "mode of %s", path)
}

// dataDirMode is the data directory's mode: 0700, or 0710 with the postgres
// group when we are root and PostgreSQL runs as that user.
func dataDirMode(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		requireMode(t, 0o700, dir)
		return
	}
	requireMode(t, 0o710, dir)
	cred, err := (&Stack{opts: Options{Log: slog.New(slog.DiscardHandler)}}).postgresCredential(t.Context())
	require.NoError(t, err)
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, cred.Gid, fi.Sys().(*syscall.Stat_t).Gid, "the data directory's group is postgres")
}

// pgConnect connects with a keyword/value string, so a socket directory
// can be the host.
func pgConnect(ctx context.Context, host, port, password string) error {
	dsn := fmt.Sprintf("host=%s port=%s user=%s dbname=postgres sslmode=disable connect_timeout=5", host, port, pgSuperuser)
	if password != "" {
		dsn += " password=" + password
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var user string
	return conn.QueryRow(ctx, `SELECT current_user`).Scan(&user)
}

// requireRefused checks that PostgreSQL refused a connection for its
// password.
func requireRefused(t *testing.T, err error, what string) {
	t.Helper()
	var pgErr *pgconn.PgError
	require.Error(t, err, "%s was let in", what)
	require.True(t, errors.As(err, &pgErr), "%s: %v", what, err)
	assert.Equal(t, pgInvalidPassword, pgErr.Code, "%s: %v", what, err)
}

// noSecretIn fails when a password shows in a process's command line
// (everyone's ps shows it) or in a log file.
func noSecretIn(t *testing.T, st *Stack, secrets ...string) {
	t.Helper()
	for _, svc := range st.Services() {
		cmdline := readFile(t, filepath.Join("/proc", strconv.Itoa(svc.PID), "cmdline"))
		for _, s := range secrets {
			assert.NotContains(t, cmdline, s, "%s's command line shows a password", svc.Name)
		}
	}
	logs, err := filepath.Glob(filepath.Join(st.Dir, "logs", "*"))
	require.NoError(t, err)
	require.NotEmpty(t, logs)
	for _, l := range logs {
		body := readFile(t, l)
		for _, s := range secrets {
			assert.NotContains(t, body, s, "%s shows a password", l)
		}
	}
}

// TestServicesRequireTheirPasswords: the private PostgreSQL refuses a
// connection without its password over 127.0.0.1 and over the unix socket
// (and with a wrong one), the private Redis refuses commands without its
// password; both accept the generated passwords, which the stack's URLs
// carry and 0600 files in a private data directory keep. No password shows
// in a command line or a log.
func TestServicesRequireTheirPasswords(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := t.Context()
	st, log, _ := startWith(t, Options{Dir: dir})

	pgPassword := strings.TrimSpace(readFile(t, filepath.Join(dir, PostgresPasswordFile)))
	redisPassword := strings.TrimSpace(readFile(t, filepath.Join(dir, RedisPasswordFile)))
	assert.Len(t, pgPassword, 2*passwordBytes)
	assert.Len(t, redisPassword, 2*passwordBytes)
	assert.NotEqual(t, pgPassword, redisPassword)

	dataDirMode(t, dir)
	for _, f := range []string{PostgresPasswordFile, RedisPasswordFile, "redis/redis.conf", "postgres/data/pg_hba.conf"} {
		requireMode(t, 0o600, filepath.Join(dir, f))
	}
	for _, d := range []string{"postgres", "postgres/run", "redis", "logs", "run"} {
		requireMode(t, 0o700, filepath.Join(dir, d))
	}
	assert.NotContains(t, readFile(t, filepath.Join(dir, "postgres/data/pg_hba.conf")), "trust")

	t.Run("postgres", func(t *testing.T) {
		u, err := url.Parse(st.DatabaseURL)
		require.NoError(t, err)
		inURL, _ := u.User.Password()
		assert.Equal(t, pgPassword, inURL, "DatabaseURL carries the password")
		conn, err := pgx.Connect(ctx, st.DatabaseURL)
		require.NoError(t, err)
		require.NoError(t, conn.Close(ctx))

		sock := filepath.Join(dir, "postgres", "run")
		for _, host := range []string{"127.0.0.1", sock} {
			requireRefused(t, pgConnect(ctx, host, u.Port(), ""), "no password via "+host)
			requireRefused(t, pgConnect(ctx, host, u.Port(), "wrong"), "a wrong password via "+host)
			assert.NoError(t, pgConnect(ctx, host, u.Port(), pgPassword), "the password via %s", host)
		}
	})

	t.Run("redis", func(t *testing.T) {
		opts, err := redis.ParseURL(st.RedisURL)
		require.NoError(t, err)
		assert.Equal(t, redisPassword, opts.Password, "RedisURL carries the password")
		for name, password := range map[string]string{"no password": "", "a wrong password": "wrong"} {
			rdb := redis.NewClient(&redis.Options{Addr: opts.Addr, Password: password, MaxRetries: -1})
			err := rdb.Set(ctx, "k", "v", 0).Err()
			rdb.Close()
			require.Error(t, err, "%s was let in", name)
			assert.Regexp(t, "NOAUTH|WRONGPASS", err.Error(), name)
		}
		rdb := redis.NewClient(opts)
		defer rdb.Close()
		require.NoError(t, rdb.Set(ctx, "k", "v", 0).Err())
	})

	noSecretIn(t, st, pgPassword, redisPassword)
	for _, s := range []string{pgPassword, redisPassword} {
		assert.NotContains(t, log.String(), s, "the stack logged a password")
	}
}

// oldCluster lays out what mpegflow dev left before passwords: a cluster
// whose superuser mpegflow is trusted on 127.0.0.1 and the socket, with
// no password and no password file, holding a table.
func oldCluster(t *testing.T, dir string) {
	t.Helper()
	s := &Stack{Dir: dir, opts: Options{Dir: dir, Log: slog.New(slog.DiscardHandler)}}
	root := filepath.Join(dir, "postgres")
	data := filepath.Join(root, "data")
	require.NoError(t, os.MkdirAll(filepath.Join(root, "run"), 0o700))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "logs"), 0o700))
	bin, err := findPostgres(data)
	require.NoError(t, err)
	cred, err := s.postgresCredential(t.Context())
	require.NoError(t, err)
	if cred != nil {
		require.NoError(t, s.handToPostgresUser(t.Context(), cred, root))
		require.NoError(t, os.Chown(dir, -1, 0))
		require.NoError(t, os.Chmod(dir, 0o701)) // as the old version left it
	}
	run := func(stdin string, name string, args ...string) {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Dir = root
		cmd.Env = childEnv([]string{"PG*"})
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s: %s", name, out)
		require.NotContains(t, string(out), "ERROR:")
	}
	run("", "initdb", "-D", data, "-U", pgSuperuser, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	run("CREATE TABLE kept (v text)\nINSERT INTO kept VALUES ('from before passwords')\n", "postgres", "--single", "-D", data, "postgres")
	require.Contains(t, readFile(t, filepath.Join(data, "pg_hba.conf")), "trust")
}

// TestOldDataDirectoryIsUpgraded: a data directory from before passwords
// (trust on loopback and the socket, no password file) starts with a
// generated password, scram-sha-256 only, and its data. A password file
// that does not match the cluster is a fast, clear error; deleting the
// file sets a new password.
func TestOldDataDirectoryIsUpgraded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := t.Context()
	oldCluster(t, dir)
	opts := Options{Dir: dir, RedisURL: "redis://unused"}

	st, log, stop := startWith(t, opts)
	pwPath := filepath.Join(dir, PostgresPasswordFile)
	password := strings.TrimSpace(readFile(t, pwPath))
	require.Len(t, password, 2*passwordBytes)
	requireMode(t, 0o600, pwPath)
	dataDirMode(t, dir)
	assert.Contains(t, log.String(), "PostgreSQL now requires a password")
	assert.NotContains(t, log.String(), password)
	hba := readFile(t, filepath.Join(dir, "postgres/data/pg_hba.conf"))
	assert.NotContains(t, hba, "trust")

	u, err := url.Parse(st.DatabaseURL)
	require.NoError(t, err)
	for _, host := range []string{"127.0.0.1", filepath.Join(dir, "postgres", "run")} {
		requireRefused(t, pgConnect(ctx, host, u.Port(), ""), "no password via "+host)
		assert.NoError(t, pgConnect(ctx, host, u.Port(), password), "the password via %s", host)
	}
	old := *u
	old.Path = "/postgres"
	conn, err := pgx.Connect(ctx, old.String())
	require.NoError(t, err)
	var v string
	require.NoError(t, conn.QueryRow(ctx, `SELECT v FROM kept`).Scan(&v))
	assert.Equal(t, "from before passwords", v)
	require.NoError(t, conn.Close(ctx))
	noSecretIn(t, st, password)
	stop()

	// A password file that is not the cluster's: a clear error, at once.
	require.NoError(t, os.WriteFile(pwPath, []byte("not-the-password\n"), 0o600))
	began := time.Now()
	sctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts.StopGrace = 3 * time.Second
	opts.S3 = &objstore.Config{Bucket: "b"}
	_, err = Start(sctx, opts)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "delete that file and start again")
	assert.Less(t, time.Since(began), 30*time.Second, "gave up at once, not after the ready timeout")

	// Deleting it sets a new password.
	require.NoError(t, os.Remove(pwPath))
	st, _, _ = startWith(t, opts)
	again := strings.TrimSpace(readFile(t, pwPath))
	assert.NotEqual(t, password, again)
	u, err = url.Parse(st.DatabaseURL)
	require.NoError(t, err)
	requireRefused(t, pgConnect(ctx, "127.0.0.1", u.Port(), password), "the old password")
	assert.NoError(t, pgConnect(ctx, "127.0.0.1", u.Port(), again))
}

// TestDeepDataDirectoryGetsNoSocket: when the data directory is too deep for
// a unix socket path, PostgreSQL listens on 127.0.0.1 only (with its
// password), rather than on a socket in a /tmp directory that another user
// could have created first.
func TestDeepDataDirectoryGetsNoSocket(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), strings.Repeat("deep", 20))
	st, _, _ := startWith(t, Options{Dir: dir, RedisURL: "redis://unused"})
	u, err := url.Parse(st.DatabaseURL)
	require.NoError(t, err)
	password, _ := u.User.Password()
	require.NoError(t, pgConnect(t.Context(), "127.0.0.1", u.Port(), password))
	requireRefused(t, pgConnect(t.Context(), "127.0.0.1", u.Port(), ""), "no password")

	resolved, err := filepath.EvalSymlinks(dir)
	require.NoError(t, err)
	sum := sha256.Sum256([]byte(resolved))
	assert.NoDirExists(t, filepath.Join(os.TempDir(), "mpegflow-pg-"+hex.EncodeToString(sum[:6])), "the socket directory of older versions")
	assert.NotContains(t, readFile(t, "/proc/net/unix"), ".s.PGSQL."+u.Port(), "a unix socket for the deep data directory's PostgreSQL")
}
