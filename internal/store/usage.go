package store

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// UsageDay is one organization's usage on one UTC day.
type UsageDay struct {
	Day           time.Time `db:"day"`
	JobsCompleted int64     `db:"jobs_completed"`
	JobsFailed    int64     `db:"jobs_failed"`
	JobsCancelled int64     `db:"jobs_cancelled"`
	EncodeSeconds float64   `db:"encode_seconds"`
	GPUSeconds    float64   `db:"gpu_seconds"`
	OutputMinutes float64   `db:"output_minutes"`
}

// Usage sums usage records per day in [from, to] (dates, inclusive). The
// tasks of a split job add their seconds; the job counts are of jobs.
func (s *Store) Usage(ctx context.Context, orgID uuid.UUID, from, to time.Time) ([]UsageDay, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT day,
			count(*) FILTER (WHERE status = 'completed' AND parent_job_id IS NULL) AS jobs_completed,
			count(*) FILTER (WHERE status = 'failed' AND parent_job_id IS NULL) AS jobs_failed,
			count(*) FILTER (WHERE status = 'cancelled' AND parent_job_id IS NULL) AS jobs_cancelled,
			COALESCE(sum(encode_seconds), 0) AS encode_seconds,
			COALESCE(sum(gpu_seconds), 0) AS gpu_seconds,
			COALESCE(sum(output_minutes), 0) AS output_minutes
		FROM usage_records WHERE org_id = $1 AND day BETWEEN $2 AND $3
		GROUP BY day ORDER BY day`, orgID, from, to)
	ds, err := pgx.CollectRows(rows, pgx.RowToStructByName[UsageDay])
	return ds, mapErr(err, "usage")
}

// prefixed qualifies a comma-separated column list with a table alias.
func prefixed(alias, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = alias + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}
