package queue

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// runEach makes n calls of script in one pipeline, the i-th built by call
// (with EvalSha on the pipeline it is given), and returns each call's
// command: its own reply or error. The batch never fails as a whole, so
// no call is made twice, except one Redis refused because it had not
// loaded the script (it never ran): those are sent again, once, after the
// script is loaded.
func (q *Queue) runEach(ctx context.Context, script *redis.Script, n int, call func(p redis.Pipeliner, i int) *redis.Cmd) []*redis.Cmd {
	out := make([]*redis.Cmd, n)
	unsent := make([]int, n)
	for i := range unsent {
		unsent[i] = i
	}
	for attempt := 0; len(unsent) > 0; attempt++ {
		_, _ = q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, i := range unsent {
				out[i] = call(p, i)
			}
			return nil
		})
		var again []int
		for _, i := range unsent {
			if attempt == 0 && redis.HasErrorPrefix(out[i].Err(), "NOSCRIPT") {
				again = append(again, i)
			}
		}
		if len(again) > 0 {
			if err := script.Load(ctx, q.rdb).Err(); err != nil {
				for _, i := range again {
					out[i].SetErr(fmt.Errorf("load the script: %w", err))
				}
				break
			}
		}
		unsent = again
	}
	return out
}
