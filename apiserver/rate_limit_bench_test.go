package apiserver

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/ratelimit"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

// BenchmarkRateLimitMiddleware measures the limit middleware on the test
// Redis: one request through Fiber with an authenticated principal, the
// limit middleware and a handler that answers 204, with the limiter off and
// on. The difference of the two is the middleware's cost per request;
// redis_round_trips/op counts the commands the limiter sent (budgets are
// large enough that nothing is refused).
func BenchmarkRateLimitMiddleware(b *testing.B) {
	rdb, prefix := testenv.Redis(b)
	sent := &commandCounter{}
	rdb.AddHook(sent)
	log := slog.New(slog.DiscardHandler)
	huge := ratelimit.Limit{Rate: ratelimit.Rate{Tokens: ratelimit.MaxTokens, Per: time.Second}, Burst: ratelimit.MaxBurst}
	for _, on := range []bool{false, true} {
		name := map[bool]string{false: "off", true: "redis"}[on]
		b.Run(name, func(b *testing.B) {
			var lim *ratelimit.Limiter
			if on {
				var err error
				lim, err = ratelimit.New(ratelimit.Config{Key: huge, Org: huge}, rdb, queue.NewKeys(prefix), log)
				if err != nil {
					b.Fatal(err)
				}
			}
			s := &Server{cfg: Config{Limiter: lim}, log: log}
			app := fiber.New(fiber.Config{ErrorHandler: s.errorHandler, DisableStartupMessage: true})
			p := store.Principal{KeyID: uuid.New(), OrgID: uuid.New(), Role: auth.Viewer, OrgStatus: "active"}
			app.Get("/v1/jobs",
				func(c *fiber.Ctx) error { c.Locals(principalKey, p); return c.Next() },
				s.limit,
				func(c *fiber.Ctx) error { return c.SendStatus(http.StatusNoContent) })
			before, n := sent.n.Load(), 0
			for b.Loop() {
				resp, err := app.Test(httptest.NewRequest("GET", "/v1/jobs", nil), -1)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					b.Fatalf("status %d", resp.StatusCode)
				}
				n++
			}
			b.ReportMetric(float64(sent.n.Load()-before)/float64(n), "redis_round_trips/op")
		})
	}
}

// commandCounter counts the commands (and pipelines) a Redis client sent:
// each is one round trip.
type commandCounter struct{ n atomic.Int64 }

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}

func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmds)
	}
}
