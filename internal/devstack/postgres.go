package devstack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
)

const (
	// pgSuperuser is the cluster's superuser; trust authentication on
	// 127.0.0.1 and the socket means it needs no password.
	pgSuperuser = "mpegflow"
	// pgDatabase is the database MpegFlow uses in the private cluster.
	pgDatabase = "mpegflow"
	// pgSystemUser runs PostgreSQL when we are root (it refuses root).
	pgSystemUser = "postgres"
	// maxSocketPath is sun_path's size on Linux, minus its terminating NUL.
	maxSocketPath = 107
)

// startPostgres initialises the cluster once and runs postgres on it.
func (s *Stack) startPostgres(ctx context.Context, pp *portPicker, prefer int) (string, int, error) {
	root := s.path("postgres")
	data := filepath.Join(root, "data")
	bin, err := findPostgres(data)
	if err != nil {
		return "", 0, err
	}
	cred, err := s.postgresCredential(ctx)
	if err != nil {
		return "", 0, err
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", 0, fmt.Errorf("devstack: create %s: %w", root, err)
	}
	sock := filepath.Join(root, "run")
	if len(sock)+len("/.s.PGSQL.65535.lock") > maxSocketPath {
		// A deep data directory would overflow the socket path; use a
		// short directory named after it instead.
		sum := sha256.Sum256([]byte(s.Dir))
		sock = filepath.Join(os.TempDir(), "mpegflow-pg-"+hex.EncodeToString(sum[:6]))
	}
	if err := os.MkdirAll(sock, 0o700); err != nil {
		return "", 0, fmt.Errorf("devstack: create %s: %w", sock, err)
	}
	if cred != nil {
		if err := s.handToPostgresUser(ctx, cred, root, sock); err != nil {
			return "", 0, err
		}
	}
	if _, err := stopLeftover("postgres", data, syscall.SIGINT, s.opts.StopGrace,
		s.path("run", "postgres.pid"), filepath.Join(data, "postmaster.pid")); err != nil {
		return "", 0, fmt.Errorf("devstack: %w", err)
	}
	if err := s.initdb(ctx, bin, root, data, cred); err != nil {
		return "", 0, err
	}

	start := func(port int) (*proc, error) {
		return startProc(procSpec{
			name: "postgres", path: filepath.Join(bin, "postgres"),
			args: []string{"-D", data, "-p", strconv.Itoa(port), "-k", sock, "-c", "listen_addresses=127.0.0.1"},
			env:  childEnv([]string{"PG*"}), dir: root, logPath: s.path("logs", "postgres.log"),
			cred: cred, stopSig: syscall.SIGINT, pidFile: s.path("run", "postgres.pid"),
		})
	}
	ready := func(ctx context.Context, _ *proc, port int) error {
		conn, err := pgx.Connect(ctx, pgURL(port, "postgres"))
		if err != nil {
			return err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		return conn.Ping(ctx)
	}
	taken := func(out string) bool {
		return strings.Contains(out, "Address already in use") || strings.Contains(out, "could not create any TCP/IP sockets")
	}
	_, port, err := s.launch(ctx, "postgres", s.opts.PostgresPort, prefer, pp, start, ready, taken)
	if err != nil {
		return "", 0, err
	}
	if err := createDatabase(ctx, port); err != nil {
		return "", 0, err
	}
	return pgURL(port, pgDatabase), port, nil
}

func pgURL(port int, db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", pgSuperuser, port, db)
}

func createDatabase(ctx context.Context, port int) error {
	conn, err := pgx.Connect(ctx, pgURL(port, "postgres"))
	if err != nil {
		return fmt.Errorf("devstack: connect to postgres: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, pgDatabase).Scan(&exists); err != nil {
		return fmt.Errorf("devstack: look for database %s: %w", pgDatabase, err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgDatabase); err != nil {
			return fmt.Errorf("devstack: create database %s: %w", pgDatabase, err)
		}
	}
	return nil
}

// initdb creates the cluster unless it exists.
func (s *Stack) initdb(ctx context.Context, bin, root, data string, cred *syscall.Credential) error {
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err == nil {
		return nil
	}
	// A directory without PG_VERSION is an initdb that did not finish.
	if err := os.RemoveAll(data); err != nil {
		return fmt.Errorf("devstack: remove unfinished cluster %s: %w", data, err)
	}
	logPath := s.path("logs", "initdb.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("devstack: open initdb log: %w", err)
	}
	defer logf.Close()
	s.opts.Log.InfoContext(ctx, "creating the PostgreSQL cluster (first run)", slog.String("dir", data))
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", pgSuperuser,
		"--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	cmd.Env = childEnv([]string{"PG*"})
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(logPath)
		_ = os.RemoveAll(data)
		return fmt.Errorf("devstack: initdb failed (%w); last lines of %s:\n%s", err, logPath, tail(string(out), 20))
	}
	syscall.Sync() // --no-sync is fast; one sync makes the new cluster durable
	return nil
}

// findPostgres returns the directory holding initdb and postgres: the
// install matching an existing cluster's major version, else the one on
// PATH, else the newest /usr/lib/postgresql/<major>/bin (Debian, Ubuntu).
func findPostgres(data string) (string, error) {
	usable := func(dir string) bool {
		for _, b := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if v, err := os.ReadFile(filepath.Join(data, "PG_VERSION")); err == nil {
		if dir := filepath.Join("/usr/lib/postgresql", strings.TrimSpace(string(v)), "bin"); usable(dir) {
			return dir, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil && usable(filepath.Dir(r)) {
			return filepath.Dir(r), nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(matches, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, dir := range matches {
		if usable(dir) {
			return dir, nil
		}
	}
	return "", errors.New("devstack: PostgreSQL server binaries (initdb, postgres) not found on PATH or in /usr/lib/postgresql/*/bin: " +
		"install PostgreSQL (scripts/deps.sh or your package manager), or set DATABASE_URL to use your own")
}

// postgresCredential is nil unless we are root; then it is the postgres
// system user's, created when missing.
func (s *Stack) postgresCredential(ctx context.Context) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(pgSystemUser)
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) {
		s.opts.Log.InfoContext(ctx, "creating system user postgres to run PostgreSQL (it refuses to run as root)")
		out, cerr := exec.CommandContext(ctx, "useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", pgSystemUser).CombinedOutput()
		if cerr != nil {
			return nil, fmt.Errorf("devstack: PostgreSQL refuses to run as root and creating the postgres user failed: %w: %s", cerr, strings.TrimSpace(string(out)))
		}
		u, err = user.Lookup(pgSystemUser)
	}
	if err != nil {
		return nil, fmt.Errorf("devstack: look up the postgres user: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("devstack: postgres user has non-numeric ids %s:%s", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// handToPostgresUser gives the cluster's directories to the postgres user
// and makes the data directory (and every directory above it) traversable,
// so that user can reach them.
func (s *Stack) handToPostgresUser(ctx context.Context, cred *syscall.Credential, dirs ...string) error {
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, int(cred.Uid), int(cred.Gid))
		})
		if err != nil {
			return fmt.Errorf("devstack: give %s to the postgres user: %w", dir, err)
		}
	}
	for d := s.Dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("devstack: %w", err)
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode().Perm()
		ok := mode&0o001 != 0 ||
			(st != nil && st.Uid == cred.Uid && mode&0o100 != 0) ||
			(st != nil && st.Gid == cred.Gid && mode&0o010 != 0)
		if !ok {
			if err := os.Chmod(d, mode|0o001); err != nil {
				return fmt.Errorf("devstack: make %s traversable for the postgres user: %w", d, err)
			}
			if d != s.Dir {
				s.opts.Log.InfoContext(ctx, "made a parent of the data directory traversable (o+x) so the postgres user reaches its cluster",
					slog.String("dir", d))
			}
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}
