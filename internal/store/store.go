// Package store is MpegFlow's only door to Postgres: every SQL statement the
// product runs lives in this package, and every multi-row change runs inside
// one transaction. Callers get domain types and the sentinel errors below,
// never pgx errors.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	// ErrNotFound means the row does not exist or belongs to another tenant;
	// the API answers 404 for both so ids never leak across organizations.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the change collides with existing state (a duplicate
	// name, a job that already finished, the last owner leaving).
	ErrConflict = errors.New("conflict")
)

// ConflictError explains a conflict to the client while still matching
// ErrConflict with errors.Is.
type ConflictError struct{ Detail string }

func (e *ConflictError) Error() string { return "conflict: " + e.Detail }

// Is makes errors.Is(err, ErrConflict) true for every ConflictError.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

func conflict(format string, args ...any) error {
	return &ConflictError{Detail: fmt.Sprintf(format, args...)}
}

// Store wraps a pgx pool. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	// pipe runs the group-commit statements (claims, heartbeats,
	// completions, submissions), those ready together as one pipeline, on
	// pool unless WithHotPath gave a pool of their own.
	pipe *hotPipeline
}

// New returns a Store on an open pool; the caller owns the pool's lifetime.
func New(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, pipe: newHotPipeline(pool, nil, nil, nil)}
}

// WithHotPath makes the group-commit statements (claims, heartbeats,
// completions, submissions) run on hot, a pool opened by OpenHotPath; the
// caller owns its lifetime.
//
// Why: pgx prepares each statement once per connection and Postgres keeps
// its generic plan until the tables' statistics change. A statement first
// planned while the jobs table was small (a new database, the first
// minutes of a deployment) gets a sequential scan of jobs, the cheapest
// plan then, and keeps it while the table grows until autovacuum's next
// ANALYZE (measured: the claim and completion batches scanning 8,000
// rows, 2–9 ms a statement, in a 10-second benchmark from an empty
// database). These statements only ever find rows by key, so on their
// own connections sequential scans are off and their plans are index
// scans whatever the table's size when they were made.
func (s *Store) WithHotPath(hot *pgxpool.Pool) *Store {
	return &Store{pool: s.pool, pipe: newHotPipeline(hot, nil, nil, nil)}
}

// ObservePipelines has sizes observe the number of statements of each
// pipeline the hot path sends (hotPipeline), waits how long each
// statement waited for its pipeline and runs how long each pipeline ran
// (groupcommit.Group.Timed); any may be nil. Call it before the store is
// used: the pipeline is made anew.
func (s *Store) ObservePipelines(sizes, waits, runs prometheus.Observer) {
	s.pipe = newHotPipeline(s.pipe.pool, sizes, waits, runs)
}

// Open connects to databaseURL and checks the connection.
func Open(ctx context.Context, databaseURL string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	// pgx defaults to max(4, CPUs) connections, which serialises a busy API
	// or coordinator on small machines; 20 keeps well under Postgres's
	// default of 100 with a few replicas. pool_max_conns in the URL wins.
	if !strings.Contains(databaseURL, "pool_max_conns") {
		cfg.MaxConns = 20
	}
	return connect(ctx, cfg)
}

// connect opens a pool on cfg, its connections prepared by AfterConnect,
// and checks that Postgres answers.
func connect(ctx context.Context, cfg *pgxpool.Config) (*pgxpool.Pool, error) {
	cfg.AfterConnect = AfterConnect
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping database: %w", err)
	}
	return pool, nil
}

// uuidArray is how the group-commit statements pass a uuid[] parameter:
// as the ids' 16 bytes. It predates uuidCodec (uuid_codec.go), which
// now encodes a uuid.UUID the same way on the store's connections; a
// pool without it would send each id as text and parse it back, about
// 16 times the CPU (36 µs against 2.2 µs for 16 ids, pgtype.Map.Encode).
type uuidArray = [][16]byte

// hotPathConns is the hot path pool's size: the pipelines in flight at
// once (hotPipeline, which sends all its statements), and two spare, so
// that a connection being replaced does not hold a pipeline up.
const hotPathConns = pipelineInFlight + 2

// OpenHotPath connects a pool for WithHotPath to databaseURL: sequential
// scans off on its connections, hotPathConns connections (pool_max_conns
// in the URL sizes the other pool only).
func OpenHotPath(ctx context.Context, databaseURL string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	cfg.MaxConns = hotPathConns
	HotPathConfig(cfg.ConnConfig)
	return connect(ctx, cfg)
}

// HotPathConfig sets what the hot path's connections need on cfg (for a
// pool opened otherwise, as a test's): sequential scans off.
func HotPathConfig(cfg *pgx.ConnConfig) {
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["enable_seqscan"] = "off"
}

// Ping checks that Postgres answers; /ready uses it.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	return nil
}

// inTx runs fn in a transaction, committing when fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if err := pgx.BeginFunc(ctx, s.pool, fn); err != nil {
		return err
	}
	return nil
}

// RefusedInput reports whether Postgres refused a statement because of the
// data it was given, and says why in words a client can act on. The API
// validates text before it reaches the store (internal/strictjson,
// validation.TextProblem); this is the backstop for a value that slipped
// through, so it answers as bad input instead of a server error. The
// detail never quotes Postgres.
func RefusedInput(err error) (detail string, ok bool) {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return "", false
	}
	switch pgErr.Code {
	case "22021", // character_not_in_repertoire: NUL or invalid UTF-8 in text
		"22P05": // untranslatable_character: \u0000 in jsonb
		return "the request holds text the database cannot store: the NUL character (U+0000) or invalid UTF-8", true
	case "54000": // program_limit_exceeded: a value past a built-in size limit
		return "a value in the request is too large to store", true
	}
	return "", false
}

// mapErr turns pgx's "no rows" into ErrNotFound and unique violations into
// ErrConflict, so callers never inspect driver errors.
func mapErr(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%s: %w", what, conflict("%s already exists", what))
		case "23503": // foreign_key_violation
			return fmt.Errorf("%s: %w", what, conflict("%s is still referenced or refers to something missing", what))
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}
