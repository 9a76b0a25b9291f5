package store_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

// insertInto is a statement that inserts v into pipeline_t and reads
// nothing back.
func insertInto(v int) store.HotStatement {
	return store.NewHotStatement(`INSERT INTO pipeline_t (v) VALUES ($1)`, []any{v}, func(pgx.Rows) error { return nil })
}

// connect is a connection to a new test database, closed when the test
// ends.
func connect(t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), testenv.DatabaseURL(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// scanInto reads a statement's rows into dest, the last row winning.
func scanInto(dest any) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		for rows.Next() {
			if err := rows.Scan(dest); err != nil {
				return err
			}
		}
		return rows.Err()
	}
}

// TestPipelineStatementsAnswerEachAlone: statements sent as one pipeline
// are each their own transaction with their own answer. A statement
// refused by Postgres, or whose reader fails, leaves the statements
// before and after it applied and answered; the values read are each
// statement's own; a statement the connection has not yet prepared is
// prepared on the way.
func TestPipelineStatementsAnswerEachAlone(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	conn := connect(t)
	_, err := conn.Exec(ctx, `CREATE TABLE pipeline_t (v int PRIMARY KEY CHECK (v > 0))`)
	require.NoError(t, err)

	var (
		sum, echoed int
		text        string
	)
	stmts := []store.HotStatement{
		insertInto(1),
		insertInto(-2), // refused by its CHECK
		store.NewHotStatement(`SELECT $1::int + 40`, []any{2}, scanInto(&sum)),
		insertInto(1), // refused: the first insert committed
		store.NewHotStatement(`SELECT $1::text`, []any{"x"}, func(pgx.Rows) error { panic("a reader's bug") }),
		insertInto(3),
		store.NewHotStatement(`SELECT v FROM pipeline_t WHERE v = $1`, []any{3}, scanInto(&echoed)),
		// Read in text where the integers before it are read in binary.
		store.NewHotStatement(`SELECT $1::text || 'y'`, []any{"x"}, scanInto(&text)),
	}
	errs := store.PipelineStatements(ctx, conn, stmts)

	var pgErr *pgconn.PgError
	assert.NoError(t, errs[0])
	require.ErrorAs(t, errs[1], &pgErr)
	assert.Equal(t, "23514", pgErr.Code, "check violation, its own")
	assert.NoError(t, errs[2])
	assert.Equal(t, 42, sum)
	require.ErrorAs(t, errs[3], &pgErr)
	assert.Equal(t, "23505", pgErr.Code, "unique violation: the first insert had committed")
	assert.ErrorContains(t, errs[4], "a reader's bug")
	assert.NoError(t, errs[5])
	assert.NoError(t, errs[6])
	assert.Equal(t, 3, echoed, "the row inserted earlier in the same pipeline, committed by its own Sync")
	assert.NoError(t, errs[7])
	assert.Equal(t, "xy", text, "each statement's rows read in the formats asked for it")

	var n int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM pipeline_t`).Scan(&n))
	assert.Equal(t, 2, n, "rows 1 and 3, nothing of the refused statements")
	var v int
	require.NoError(t, conn.QueryRow(ctx, `SELECT 7`).Scan(&v), "the connection is usable after the pipeline")
	assert.Equal(t, 7, v)
}

// TestPipelineStatementPreparedAgain: a statement whose result type a
// migration changed is refused once (Postgres's "cached plan must not
// change result type"), then prepared again and answered, on the same
// connection; so is one whose prepared form a pooler discarded.
func TestPipelineStatementPreparedAgain(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	conn := connect(t)
	_, err := conn.Exec(ctx, `CREATE TABLE pipeline_m (a int); INSERT INTO pipeline_m VALUES (7)`)
	require.NoError(t, err)
	var got any
	selectAll := func() error {
		return store.PipelineStatements(ctx, conn, []store.HotStatement{
			store.NewHotStatement(`SELECT * FROM pipeline_m`, nil, scanInto(&got)),
		})[0]
	}
	require.NoError(t, selectAll())
	assert.EqualValues(t, 7, got)

	_, err = conn.Exec(ctx, `ALTER TABLE pipeline_m ALTER COLUMN a TYPE text`)
	require.NoError(t, err)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, selectAll(), &pgErr, "the statement prepared for an int column")
	assert.Equal(t, "0A000", pgErr.Code)
	require.NoError(t, selectAll(), "prepared again")
	assert.Equal(t, "7", got)

	_, err = conn.Exec(ctx, `DEALLOCATE ALL`)
	require.NoError(t, err)
	require.ErrorAs(t, selectAll(), &pgErr, "the prepared statement is gone")
	assert.Equal(t, "26000", pgErr.Code)
	require.NoError(t, selectAll(), "prepared again")
}

// TestPipelineBrokenConnection: when the connection is gone, every
// statement of the pipeline gets an error (none is answered from stale
// state), and none reports success.
func TestPipelineBrokenConnection(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	conn, killer := connect(t), connect(t)
	var pid uint32
	require.NoError(t, conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid))
	_, err := killer.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid)
	require.NoError(t, err)

	read := 0
	stmts := []store.HotStatement{
		store.NewHotStatement(`SELECT 1`, nil, func(pgx.Rows) error { read++; return nil }),
		store.NewHotStatement(`SELECT 2`, nil, func(pgx.Rows) error { read++; return nil }),
	}
	errs := store.PipelineStatements(ctx, conn, stmts)
	for i, err := range errs {
		assert.Error(t, err, "statement %d", i)
	}
	assert.Zero(t, read)
}

// batchRecorder is a pgx tracer that records the statements of each
// batch (a pipeline is traced as one).
type batchRecorder struct {
	mu      sync.Mutex
	batches []int
}

func (r *batchRecorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}
func (r *batchRecorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *batchRecorder) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, d.Batch.Len())
	return ctx
}
func (r *batchRecorder) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *batchRecorder) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// TestHotPipelineConcurrentCallers: many callers at once, each with its
// own argument, each get their own answer; statements that came while a
// pipeline ran went together in the next (the pool's tracer sees each
// statement once, in pipelines of several), and the sizes observer is
// told the same.
func TestHotPipelineConcurrentCallers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cfg, err := pgxpool.ParseConfig(testenv.DatabaseURL(t))
	require.NoError(t, err)
	rec := &batchRecorder{}
	cfg.ConnConfig.Tracer = rec
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	var (
		obsMu    sync.Mutex
		observed []int
	)
	p := store.NewHotPipeline(pool, prometheus.ObserverFunc(func(n float64) {
		obsMu.Lock()
		defer obsMu.Unlock()
		observed = append(observed, int(n))
	}))

	const callers = 200
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		bad  []int
		errs []error
	)
	for i := range callers {
		wg.Go(func() {
			var got int
			err := p.QueryRow(ctx, `SELECT $1::int * 2 FROM pg_sleep(0.001)`, []any{i}, &got)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else if got != 2*i {
				bad = append(bad, i)
			}
		})
	}
	wg.Wait()
	require.Empty(t, errs)
	assert.Empty(t, bad, "callers given another's answer")
	var got int
	err = p.QueryRow(ctx, `SELECT 1 WHERE false`, nil, &got)
	assert.True(t, errors.Is(err, pgx.ErrNoRows), "no row: pgx.ErrNoRows, as QueryRow gives: %v", err)

	rec.mu.Lock()
	defer rec.mu.Unlock()
	sum := 0
	for _, n := range rec.batches {
		sum += n
	}
	assert.Equal(t, callers+1, sum, "every statement traced once")
	assert.Greater(t, slices.Max(rec.batches), 1, "statements that waited went together")
	assert.Less(t, len(rec.batches), callers+1)
	obsMu.Lock()
	defer obsMu.Unlock()
	assert.ElementsMatch(t, rec.batches, observed, "the sizes observer told of each pipeline")

}
