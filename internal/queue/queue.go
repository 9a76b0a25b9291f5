package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

// Queue performs the dispatch-hint operations on Redis. Postgres stays the
// truth: losing anything here delays work but never loses it.
type Queue struct {
	rdb  redis.UniversalClient
	keys Keys
}

// New returns a Queue on rdb with the given key builders.
func New(rdb redis.UniversalClient, keys Keys) *Queue { return &Queue{rdb: rdb, keys: keys} }

// Keys returns the key builders in use.
func (q *Queue) Keys() Keys { return q.keys }

// Len is the number of unclaimed job ids on a pool's lane.
func (q *Queue) Len(ctx context.Context, pool, lane string) (int64, error) {
	n, err := q.rdb.LLen(ctx, q.keys.Queue(pool, lane)).Result()
	if err != nil {
		return 0, fmt.Errorf("length of %s: %w", q.keys.Queue(pool, lane), err)
	}
	return n, nil
}

// SetPaused sets or clears a pool's pause key.
func (q *Queue) SetPaused(ctx context.Context, pool string, paused bool) error {
	key := q.keys.Paused(pool)
	var err error
	if paused {
		err = q.rdb.Set(ctx, key, "1", 0).Err()
	} else {
		err = q.rdb.Del(ctx, key).Err()
	}
	if err != nil {
		return fmt.Errorf("set pause of pool %s to %t: %w", pool, paused, err)
	}
	return nil
}

// Paused reports whether a pool's pause key exists.
func (q *Queue) Paused(ctx context.Context, pool string) (bool, error) {
	n, err := q.rdb.Exists(ctx, q.keys.Paused(pool)).Result()
	if err != nil {
		return false, fmt.Errorf("read pause of pool %s: %w", pool, err)
	}
	return n == 1, nil
}

// Pools reads, in one pass over the prefix's keys (SCAN, never KEYS), every
// pool that has keys in Redis (any key of a lane, Keys.PoolOf, or a pause
// key), each with
// whether its pause key exists. The queue reconciler compares it with the
// pool rows: pause keys follow the status, deleted pools' keys go.
func (q *Queue) Pools(ctx context.Context) (map[string]bool, error) {
	paused := map[string]bool{}
	iter := q.rdb.Scan(ctx, 0, q.keys.All(), 1000).Iterator()
	for iter.Next(ctx) {
		if pool, ok := q.keys.PoolOf(iter.Val()); ok {
			paused[pool] = paused[pool] || iter.Val() == q.keys.Paused(pool)
		}
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("scan the keys of pools: %w", err)
	}
	return paused, nil
}

// DropPool removes a deleted pool's keys: its lanes' lists, organization
// lists and fair-share state, and its pause key.
func (q *Queue) DropPool(ctx context.Context, pool string) error {
	keys := []string{q.keys.Paused(pool)}
	for _, lane := range apiv1.Lanes {
		keys = append(keys, q.keys.Queue(pool, lane), q.keys.Orgs(pool, lane), q.keys.Shares(pool, lane))
		iter := q.rdb.Scan(ctx, 0, q.keys.orgQueues(pool, lane), 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			return fmt.Errorf("scan the organization lists of pool %s: %w", pool, err)
		}
	}
	if err := q.rdb.Del(ctx, keys...).Err(); err != nil {
		return fmt.Errorf("drop redis keys of pool %s: %w", pool, err)
	}
	return nil
}

// Ping checks that Redis answers; /ready uses it.
func (q *Queue) Ping(ctx context.Context) error {
	if err := q.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

// Publish sends event payloads on the events channel, in order, in one
// message: several are joined by newlines, which no event's JSON holds
// (encoding/json escapes it in strings), and subscribers split them
// (Events). One PUBLISH whatever their number, since each message costs
// Redis a delivery to every subscribed replica; a payload holding a
// newline is refused, with the rest.
func (q *Queue) Publish(ctx context.Context, payloads ...[]byte) error {
	if len(payloads) == 0 {
		return nil
	}
	for _, p := range payloads {
		if bytes.IndexByte(p, '\n') >= 0 {
			return fmt.Errorf("publish events (%d): %w", len(payloads), errEventNewline)
		}
	}
	msg := payloads[0]
	if len(payloads) > 1 {
		msg = bytes.Join(payloads, []byte{'\n'})
	}
	if err := q.rdb.Publish(ctx, q.keys.Events(), msg).Err(); err != nil {
		return fmt.Errorf("publish events (%d): %w", len(payloads), err)
	}
	return nil
}

// errEventNewline refuses an event that would split in two (Publish).
var errEventNewline = errors.New("an event payload holds a newline")

// Events yields the events of a message of the events channel (Publish):
// its newline-separated payloads, the message itself when it holds one.
func Events(msg string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for p := range strings.SplitSeq(msg, "\n") {
			if p != "" && !yield(p) {
				return
			}
		}
	}
}

// ParseWake reads a message of the wake channel (Keys.Wake): how many ids
// were queued, on the lane whose list is laneKey (Keys.Queue).
func ParseWake(payload string) (n int, laneKey string, err error) {
	count, key, ok := strings.Cut(payload, " ")
	if ok {
		n, err = strconv.Atoi(count)
	}
	if !ok || err != nil || n < 1 || key == "" {
		return 0, "", fmt.Errorf("queue: wake message %q: want \"N LANE-KEY\"", payload)
	}
	return n, key, nil
}

// SubscribeWake subscribes to the wake channel; the caller closes it.
func (q *Queue) SubscribeWake(ctx context.Context) *redis.PubSub {
	return q.rdb.Subscribe(ctx, q.keys.Wake())
}
