package queue

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/mpegflow/mpegflow/internal/testenv"
)

// fifoPopScript is the claim gate before fair share (one RPOP), kept here
// only as the baseline of BenchmarkPop.
var fifoPopScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {'paused'}
end
local id = redis.call('RPOP', KEYS[2])
if not id then
  return {'empty'}
end
return {'job', id}
`)

// BenchmarkPop times one claim's pop script against a real Redis with
// b.N ids queued across a number of organizations (equal weights but one
// of 4), and the FIFO script it replaced. Run with:
//
//	scripts/with-services.sh go test -run '^$' -bench BenchmarkPop -benchtime 20000x -count 3 ./internal/queue/
func BenchmarkPop(b *testing.B) {
	for _, orgs := range []int{1, 10, 1000} {
		b.Run(fmt.Sprintf("orgs=%d", orgs), func(b *testing.B) {
			rdb, prefix := testenv.Redis(b)
			q := New(rdb, NewKeys(prefix))
			ctx := b.Context()
			per := b.N/orgs + 1
			for o := range orgs {
				ids := make([]string, per)
				for i := range ids {
					ids[i] = fmt.Sprintf("job-%d-%d", o, i)
				}
				w := 1
				if o == 0 {
					w = 4
				}
				if err := q.PushMany(ctx, "bench", "live", Tenant{Org: fmt.Sprintf("org-%04d", o), Weight: w}, ids); err != nil {
					b.Fatal(err)
				}
			}
			resetStats(b, rdb)
			b.ResetTimer()
			for range b.N {
				res, _, _, err := q.Pop(ctx, "bench", "live")
				if err != nil || res != PopJob {
					b.Fatalf("pop: %v %v", res, err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pops/s")
			b.ReportMetric(scriptMicros(b, rdb), "redis-µs/pop")
		})
	}
	b.Run("fifo-baseline", func(b *testing.B) {
		rdb, prefix := testenv.Redis(b)
		k := NewKeys(prefix)
		ctx := b.Context()
		ids := make([]any, b.N)
		for i := range ids {
			ids[i] = fmt.Sprintf("job-%d", i)
		}
		for len(ids) > 0 {
			n := min(len(ids), pushChunk)
			if err := rdb.LPush(ctx, k.Queue("bench", "live"), ids[:n]...).Err(); err != nil {
				b.Fatal(err)
			}
			ids = ids[n:]
		}
		keys := []string{k.Paused("bench"), k.Queue("bench", "live")}
		resetStats(b, rdb)
		b.ResetTimer()
		for range b.N {
			res, err := fifoPopScript.Run(ctx, rdb, keys).StringSlice()
			if err != nil || len(res) != 2 {
				b.Fatalf("pop: %v %v", res, err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pops/s")
		b.ReportMetric(scriptMicros(b, rdb), "redis-µs/pop")
	})
}

// resetStats clears Redis's command statistics, so scriptMicros sees only
// the pops. The benchmark must run alone on its Redis (-run '^$').
func resetStats(b *testing.B, rdb *redis.Client) {
	b.Helper()
	if err := rdb.ConfigResetStat(b.Context()).Err(); err != nil {
		b.Fatal(err)
	}
}

// scriptMicros is the time Redis itself spent per script call since
// resetStats (INFO commandstats, evalsha and eval together): the cost of
// the script without the network round trip, which dominates pops/s and
// varies with the machine's load.
func scriptMicros(b *testing.B, rdb *redis.Client) float64 {
	b.Helper()
	info, err := rdb.Info(b.Context(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var calls, usec float64
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (name != "cmdstat_evalsha" && name != "cmdstat_eval") {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			f, _ := strconv.ParseFloat(v, 64)
			switch k {
			case "calls":
				calls += f
			case "usec":
				usec += f
			}
		}
	}
	if calls == 0 {
		return 0
	}
	return usec / calls
}
