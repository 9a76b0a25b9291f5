package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// pgSuperuser is the cluster's superuser. Every connection, over
	// 127.0.0.1 or the socket, needs its password (DATA/postgres-password).
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
	if err := privateDir(root); err != nil {
		return "", 0, err
	}
	// The socket lives in a directory only the server's user can enter; a
	// data directory too deep for a socket path gets none (TCP only), never
	// a directory in /tmp that another user could have made first.
	sock := filepath.Join(root, "run")
	if len(sock)+len("/.s.PGSQL.65535.lock") > maxSocketPath {
		s.opts.Log.InfoContext(ctx, "data directory too deep for a unix socket path; PostgreSQL listens on 127.0.0.1 only", slog.String("dir", s.Dir))
		sock = ""
	} else if err := privateDir(sock); err != nil {
		return "", 0, err
	}
	if cred != nil {
		if err := s.handToPostgresUser(ctx, cred, root); err != nil {
			return "", 0, err
		}
	}
	if _, err := stopLeftover("postgres", data, syscall.SIGINT, s.opts.StopGrace,
		s.path("run", "postgres.pid"), filepath.Join(data, "postmaster.pid")); err != nil {
		return "", 0, fmt.Errorf("devstack: %w", err)
	}
	password, err := s.postgresPassword(ctx, bin, root, data, cred)
	if err != nil {
		return "", 0, err
	}
	if err := writeHBA(data, cred); err != nil {
		return "", 0, err
	}

	start := func(port int) (*proc, error) {
		return startProc(procSpec{
			name: "postgres", path: filepath.Join(bin, "postgres"),
			args: []string{"-D", data, "-p", strconv.Itoa(port), "-k", sock, "-c", "listen_addresses=127.0.0.1",
				"-c", "password_encryption=scram-sha-256"},
			env: childEnv([]string{"PG*"}), dir: root, logPath: s.path("logs", "postgres.log"),
			cred: cred, stopSig: syscall.SIGINT, pidFile: s.path("run", "postgres.pid"),
		})
	}
	ready := func(ctx context.Context, _ *proc, port int) error {
		conn, err := pgx.Connect(ctx, pgURL(port, "postgres", password))
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == pgInvalidPassword {
			return &permanentError{fmt.Errorf("the password in %s is not the cluster's (%w): delete that file and start again to set a new one",
				s.path(PostgresPasswordFile), err)}
		}
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
	if err := createDatabase(ctx, port, password); err != nil {
		return "", 0, err
	}
	return pgURL(port, pgDatabase, password), port, nil
}

// pgURL reaches database db as the superuser over 127.0.0.1.
func pgURL(port int, db, password string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(pgSuperuser, password),
		Host: "127.0.0.1:" + strconv.Itoa(port), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

func createDatabase(ctx context.Context, port int, password string) error {
	conn, err := pgx.Connect(ctx, pgURL(port, "postgres", password))
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

// pgInvalidPassword is SQLSTATE invalid_password: PostgreSQL's answer to
// a wrong password (and to a missing one).
const pgInvalidPassword = "28P01"

// pgHBA is the whole of the cluster's pg_hba.conf: a password (SCRAM) on
// every connection, over the socket and 127.0.0.1 alike; no trust, no peer.
const pgHBA = `# Written by mpegflow dev on every start; edits are overwritten.
# Every connection needs the superuser's password (DATA/postgres-password).
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 scram-sha-256
host    all       all   127.0.0.1/32  scram-sha-256
`

// writeHBA replaces the cluster's pg_hba.conf with pgHBA, so a cluster of
// an older mpegflow dev (trust on loopback and the socket) or one edited
// by hand requires the password too.
func writeHBA(data string, cred *syscall.Credential) error {
	path := filepath.Join(data, "pg_hba.conf")
	if err := writeFileAtomic(path, []byte(pgHBA), 0o600); err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	if cred != nil {
		if err := os.Chown(path, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("devstack: give %s to the postgres user: %w", path, err)
		}
	}
	return nil
}

// postgresPassword returns the superuser's password from
// DATA/postgres-password, creating the cluster with it on the first run. A
// cluster without that file (made by an older mpegflow dev, which trusted
// every local connection, or the file was deleted) gets a new password
// before the server starts.
func (s *Stack) postgresPassword(ctx context.Context, bin, root, data string, cred *syscall.Credential) (string, error) {
	path := s.path(PostgresPasswordFile)
	password, ok, err := readSecret(path)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		if !ok {
			password = newPassword()
			if err := writeSecret(path, password); err != nil {
				return "", err
			}
		}
		return password, s.initdb(ctx, bin, root, data, cred, password)
	}
	if ok {
		return password, nil
	}
	password = newPassword()
	if err := s.setPostgresPassword(ctx, bin, root, data, cred, password); err != nil {
		return "", err
	}
	// Written once the cluster has it: a crash in between sets another.
	if err := writeSecret(path, password); err != nil {
		return "", err
	}
	s.opts.Log.InfoContext(ctx, "PostgreSQL now requires a password (older data directories trusted every local connection)",
		slog.String("password_file", path))
	return password, nil
}

// setPostgresPassword sets the superuser's password with the server in
// single-user mode: no listener exists meanwhile, so nobody can connect
// while the old trust rules are still in pg_hba.conf. The statement goes
// through stdin (not the command line), and no statement is logged.
func (s *Stack) setPostgresPassword(ctx context.Context, bin, root, data string, cred *syscall.Credential, password string) error {
	logPath := s.path("logs", "postgres.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("devstack: open %s: %w", logPath, err)
	}
	defer logf.Close() //nolint:errcheck // cmd.Run reports a failed write to it; an *os.File buffers nothing for Close to lose
	s.opts.Log.InfoContext(ctx, "setting a password on the PostgreSQL cluster", slog.String("dir", data))
	var out strings.Builder
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "postgres"), "--single", "-D", data,
		"-c", "listen_addresses=", "-c", "unix_socket_directories=", "-c", "password_encryption=scram-sha-256",
		"-c", "log_statement=none", "-c", "log_min_error_statement=panic", "postgres")
	cmd.Stdin = strings.NewReader("ALTER ROLE " + pgSuperuser + " WITH PASSWORD '" + password + "'\n")
	cmd.Env = childEnv([]string{"PG*"})
	cmd.Dir = root
	w := io.MultiWriter(logf, &out) // one writer for both: exec serialises its writes
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	err = cmd.Run()
	if err == nil && strings.Contains(out.String(), "ERROR:") {
		err = errors.New("the statement failed")
	}
	if err != nil {
		return fmt.Errorf("devstack: set the PostgreSQL password in single-user mode (%w); last lines of %s:\n%s", err, logPath, tail(out.String(), 20))
	}
	return nil
}

// initdb creates the cluster, its superuser with password. A data
// directory without PG_VERSION is an initdb that did not finish; it is
// removed first.
func (s *Stack) initdb(ctx context.Context, bin, root, data string, cred *syscall.Credential, password string) error {
	if err := os.RemoveAll(data); err != nil {
		return fmt.Errorf("devstack: remove unfinished cluster %s: %w", data, err)
	}
	// initdb reads the password from a file; the server's user must read it.
	pwFile := filepath.Join(root, ".initdb-password")
	if err := writeSecret(pwFile, password); err != nil {
		return err
	}
	defer os.Remove(pwFile) //nolint:errcheck // best effort: the same password is kept in DATA/postgres-password anyway
	if cred != nil {
		if err := os.Chown(pwFile, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("devstack: give %s to the postgres user: %w", pwFile, err)
		}
	}
	logPath := s.path("logs", "initdb.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("devstack: open initdb log: %w", err)
	}
	defer logf.Close() //nolint:errcheck // the child holds its own descriptor; nothing was buffered in ours
	s.opts.Log.InfoContext(ctx, "creating the PostgreSQL cluster (first run)", slog.String("dir", data))
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", pgSuperuser,
		"--auth=scram-sha-256", "--pwfile="+pwFile, "-E", "UTF8", "--locale=C", "--no-sync")
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
// and lets that user reach them: the data directory becomes traversable by
// the postgres group only (0710), every directory above it traversable
// (o+x) where it is not yet.
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
	if err := os.Chown(s.Dir, -1, int(cred.Gid)); err != nil {
		return fmt.Errorf("devstack: let the postgres group traverse %s: %w", s.Dir, err)
	}
	if err := os.Chmod(s.Dir, 0o710); err != nil {
		return fmt.Errorf("devstack: let the postgres group traverse %s: %w", s.Dir, err)
	}
	for d := filepath.Dir(s.Dir); ; d = filepath.Dir(d) {
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
			s.opts.Log.InfoContext(ctx, "made a parent of the data directory traversable (o+x) so the postgres user reaches its cluster",
				slog.String("dir", d))
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}
