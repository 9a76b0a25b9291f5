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
	send := func(idx []int) {
		_, _ = q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, i := range idx {
				out[i] = call(p, i)
			}
			return nil
		})
	}
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	send(all)
	var unrun []int
	for i, cmd := range out {
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			unrun = append(unrun, i)
		}
	}
	if len(unrun) == 0 {
		return out
	}
	if err := script.Load(ctx, q.rdb).Err(); err != nil {
		for _, i := range unrun {
			out[i].SetErr(fmt.Errorf("load the script: %w", err))
		}
		return out
	}
	send(unrun)
	return out
}
