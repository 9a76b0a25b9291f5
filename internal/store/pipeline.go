package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mpegflow/mpegflow/internal/groupcommit"
)

// hotStatement is one of the hot path's statements (a claim, completion,
// heartbeat or submission batch) waiting for the pipeline: its SQL, its
// arguments, and read, which takes its rows.
type hotStatement struct {
	sql  string
	args []any
	read func(pgx.Rows) error
}

// hotPipeline sends the hot path's statements that are ready at the same
// moment, whatever their kinds, to Postgres together on one connection:
// one write, one wake-up of the backend, one read of the answers, where
// each statement alone costs a round trip (issue 19: at 1,000 jobs/s
// Postgres spends about as much CPU a round trip as on a job's rows).
//
// Each statement is still its own implicit transaction: a Sync follows
// each, so one statement's failure (a deadlock, a refused row) rolls back
// that statement only, and each caller gets its own statement's answer
// or error. Nothing is run twice: when the connection fails mid-pipeline,
// every statement not yet answered gets the connection's error, as a
// statement alone would, and its caller decides (a submission batch that
// may have committed is not sent again).
//
// It is a groupcommit.Group of statements: under light load a statement
// goes at once, alone; statements that come while a pipeline runs go
// together in the next.
type hotPipeline struct {
	pool *pgxpool.Pool
	// tracer is the pool's pgx tracer if it traces batches (a pipeline is
	// traced as one): taken once, since pgx copies a connection's whole
	// configuration to hand it out.
	tracer pgx.BatchTracer
	group  *groupcommit.Group[hotStatement, error]
}

// Pipeline limits: statements in one pipeline, pipelines at once (each on
// a connection of the hot pool), and how long statements wait for a
// second pipeline while one runs.
const (
	pipelineMaxStatements = 32
	pipelineInFlight      = 2
	pipelineSpill         = 2 * time.Millisecond
	pipelineTimeout       = 30 * time.Second
)

// newHotPipeline returns a pipeline on pool; sizes, waits and runs, when
// not nil, observe each pipeline's number of statements, each statement's
// wait for its pipeline and each pipeline's run (groupcommit.Group.Timed).
func newHotPipeline(pool *pgxpool.Pool, sizes, waits, runs prometheus.Observer) *hotPipeline {
	p := &hotPipeline{pool: pool}
	p.tracer, _ = pool.Config().ConnConfig.Tracer.(pgx.BatchTracer)
	p.group = groupcommit.New("pipeline", slog.Default(), p.run, nil, pipelineMaxStatements, pipelineInFlight, pipelineTimeout, sizes).
		Spill(pipelineSpill).Timed(waits, runs)
	return p
}

// query runs sql with args in the next pipeline and hands its rows to
// read, which must consume them before returning.
func (p *hotPipeline) query(ctx context.Context, sql string, args []any, read func(pgx.Rows) error) error {
	stmtErr, err := p.group.Do(ctx, hotStatement{sql: sql, args: args, read: read})
	return cmp.Or(err, stmtErr)
}

// queryRow is query for a statement of one row at most, scanned into dest
// as pgx's QueryRow does: pgx.ErrNoRows when there is none.
func (p *hotPipeline) queryRow(ctx context.Context, sql string, args []any, dest ...any) error {
	return p.query(ctx, sql, args, func(rows pgx.Rows) error {
		if !rows.Next() {
			return cmp.Or(rows.Err(), pgx.ErrNoRows)
		}
		return rows.Scan(dest...)
	})
}

// scanEach is query for the hot path's batch statements: each row is
// scanned into targets, then row is called to take it (pgx.ForEachRow).
func (p *hotPipeline) scanEach(ctx context.Context, sql string, args []any, targets []any, row func()) error {
	return p.query(ctx, sql, args, func(rows pgx.Rows) error {
		_, err := pgx.ForEachRow(rows, targets, func() error { row(); return nil })
		return err
	})
}

// run sends stmts as one pipeline and returns each statement's error. It
// never fails as a whole (groupcommit would then run each statement again
// alone, and one may have committed). A statement alone goes the same way,
// as a pipeline of one: each statement is prepared once a connection,
// under one name.
func (p *hotPipeline) run(ctx context.Context, stmts []hotStatement) ([]error, error) {
	errs := make([]error, len(stmts))
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		for i := range errs {
			errs[i] = fmt.Errorf("hot path connection: %w", err)
		}
		return errs, nil
	}
	defer conn.Release()
	if p.tracer != nil {
		b := &pgx.Batch{}
		for _, st := range stmts {
			b.Queue(st.sql, st.args...)
		}
		ctx = p.tracer.TraceBatchStart(ctx, conn.Conn(), pgx.TraceBatchStartData{Batch: b})
		defer func() {
			for i, st := range stmts {
				p.tracer.TraceBatchQuery(ctx, conn.Conn(), pgx.TraceBatchQueryData{SQL: st.sql, Args: st.args, Err: errs[i]})
			}
			p.tracer.TraceBatchEnd(ctx, conn.Conn(), pgx.TraceBatchEndData{Err: errors.Join(errs...)})
		}()
	}
	pipelineStatements(ctx, conn.Conn(), stmts, errs)
	return errs, nil
}

// readAll hands rows to read and closes them; a panic in read is that
// statement's error.
func readAll(rows pgx.Rows, read func(pgx.Rows) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("reading a statement's rows: panic: %v", p)
		}
		rows.Close()
		err = cmp.Or(err, rows.Err())
	}()
	return read(rows)
}

// pipelineStatements prepares what conn has not yet prepared, then sends
// stmts, a Sync after each, and reads their answers in order into errs.
func pipelineStatements(ctx context.Context, conn *pgx.Conn, stmts []hotStatement, errs []error) {
	sds := make([]*pgconn.StatementDescription, len(stmts))
	for i, st := range stmts {
		// Named by its text, a statement is prepared once a connection
		// (Prepare returns the description it keeps after that).
		sds[i], errs[i] = conn.Prepare(ctx, st.sql, st.sql)
	}
	pl := conn.PgConn().StartPipeline(ctx)
	var eqb pgx.ExtendedQueryBuilder
	sent := make([]bool, len(stmts))
	var stale []string
	for i, st := range stmts {
		if errs[i] != nil {
			continue
		}
		if errs[i] = eqb.Build(conn.TypeMap(), sds[i], st.args); errs[i] != nil {
			continue
		}
		// The parameters are written out at once; the result formats are
		// kept to read the answer by, and eqb's next Build reuses them.
		pl.SendQueryStatement(sds[i], eqb.ParamValues, eqb.ParamFormats, slices.Clone(eqb.ResultFormats))
		pl.SendPipelineSync()
		sent[i] = true
	}
	if err := pl.Flush(); err != nil {
		failUnanswered(errs, sent, err)
		_ = pl.Close()
		return
	}
	for i, st := range stmts {
		if !sent[i] {
			continue
		}
		sent[i] = false
		res, err := pl.GetResults()
		if err == nil {
			rr, ok := res.(*pgconn.ResultReader)
			if !ok {
				err = fmt.Errorf("hot path pipeline: got %T for a statement's rows", res)
			} else {
				err = readAll(pgx.RowsFromResultReader(conn.TypeMap(), rr), st.read)
			}
		}
		errs[i] = err
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && stalePrepared(pgErr) {
			stale = append(stale, st.sql)
		}
		if err != nil && !errors.As(err, &pgErr) && conn.PgConn().IsClosed() {
			failUnanswered(errs, sent, err)
			break
		}
		// The statement's Sync: its transaction's end.
		if _, err := pl.GetResults(); err != nil && !errors.As(err, &pgErr) {
			failUnanswered(errs, sent, err)
			break
		}
	}
	if err := pl.Close(); err != nil {
		failUnanswered(errs, sent, err)
	}
	for _, sql := range stale {
		// Prepared again at its next use, on this connection too.
		_ = conn.Deallocate(ctx, sql)
	}
}

// stalePrepared reports whether Postgres refused a prepared statement for
// what it was prepared against, not for its arguments: the result's type
// changed under it (a migration altered a column it reads) or the
// statement is gone (a pooler's DISCARD). pgx's own statement cache drops
// such a statement; the pipeline prepares its own, so it drops them itself.
func stalePrepared(err *pgconn.PgError) bool {
	return (err.Code == "0A000" && strings.Contains(err.Message, "cached plan")) || err.Code == "26000"
}

// failUnanswered gives err to every statement sent and not yet answered.
func failUnanswered(errs []error, sent []bool, err error) {
	for i := range errs {
		if sent[i] {
			errs[i], sent[i] = fmt.Errorf("hot path pipeline: %w", err), false
		}
	}
}
