package operator

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// PoolsChannel is the Postgres channel migration 0005's trigger notifies on
// every change of worker_pools.
const PoolsChannel = "mpegflow_worker_pools"

// ListenPools LISTENs on PoolsChannel and signals the returned channel
// (coalesced: one pending signal at most) on every notification, until ctx
// ends. A lost connection is re-established after retry; meanwhile the
// periodic reconcile still runs, so a missed notification only delays.
func ListenPools(ctx context.Context, databaseURL string, retry time.Duration, log *slog.Logger) <-chan struct{} {
	out := make(chan struct{}, 1)
	signal := func() {
		select {
		case out <- struct{}{}:
		default:
		}
	}
	go func() {
		for ctx.Err() == nil {
			err := listen(ctx, databaseURL, signal)
			if ctx.Err() != nil {
				return
			}
			log.WarnContext(ctx, "pool change notifications lost; reconnecting (changes still apply within one period)", "error", err, "retry_in", retry)
			select {
			case <-ctx.Done():
				return
			case <-time.After(retry):
			}
		}
	}()
	return out
}

func listen(ctx context.Context, databaseURL string, signal func()) error {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+PoolsChannel); err != nil {
		return err
	}
	signal() // changes made while we were not listening
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		signal()
	}
}
