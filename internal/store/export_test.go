package store

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// StepUp applies the next n migrations, so tests can stop the schema at each
// version on the way up and compare it with the same version on the way down.
func (mg *Migrator) StepUp(n int) error { return mg.m.Steps(n) }

// HotPathStatements are the group-commit statements that run on the hot
// path's pool (WithHotPath), by kind.
var HotPathStatements = map[string]string{
	"claim": claimJobsSQL, "complete": completeJobsSQL, "heartbeat": heartbeatJobsSQL, "submit": createJobsSQL,
	"claim one": claimJobSQL, "complete one": completeJobSQL, "heartbeat one": heartbeatSQL,
}

// HotStatement, HotPipeline and their helpers let the pipeline's tests
// (package store_test, for testenv) build statements and run them.
type (
	HotStatement = hotStatement
	HotPipeline  = hotPipeline
)

func NewHotStatement(sql string, args []any, read func(pgx.Rows) error) HotStatement {
	return hotStatement{sql: sql, args: args, read: read}
}

func PipelineStatements(ctx context.Context, conn *pgx.Conn, stmts []HotStatement) []error {
	errs := make([]error, len(stmts))
	pipelineStatements(ctx, conn, stmts, errs)
	return errs
}

func NewHotPipeline(pool *pgxpool.Pool, sizes prometheus.Observer) *HotPipeline {
	return newHotPipeline(pool, sizes, nil, nil)
}

func (p *HotPipeline) QueryRow(ctx context.Context, sql string, args []any, dest ...any) error {
	return p.queryRow(ctx, sql, args, dest...)
}
