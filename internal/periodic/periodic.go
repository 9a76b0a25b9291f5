// Package periodic runs the rounds of background services: every period,
// and at once when kicked, until the context ends.
package periodic

import (
	"context"
	"log/slog"
	"time"

	"k8s.io/utils/clock"
)

// Round is one background service: its name (in logs), how often it runs,
// an optional kick that runs it at once, and the round itself, which
// reports how many things it changed.
type Round struct {
	Name   string
	Period time.Duration
	Kick   <-chan struct{}
	Run    func(context.Context) (int, error)
}

// Loop runs r every r.Period on clk (and whenever r.Kick delivers) until
// ctx ends. A failed round is logged with hint (what to check) and retried
// next period; a round that changed something is logged at info level.
func Loop(ctx context.Context, clk clock.WithTicker, r Round, log *slog.Logger, hint string) {
	t := clk.NewTicker(r.Period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		case <-r.Kick:
		}
		n, err := r.Run(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.WarnContext(ctx, "background round failed; it retries next period, check "+hint,
				slog.String("service", r.Name), slog.Any("error", err))
		case n > 0:
			log.InfoContext(ctx, "background round", slog.String("service", r.Name), slog.Int("changed", n))
		}
	}
}
