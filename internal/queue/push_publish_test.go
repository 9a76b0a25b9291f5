package queue_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

// commandCounter counts round trips to Redis: one per command or pipeline.
type commandCounter struct{ n atomic.Int64 }

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.n.Add(1); return next(ctx, cmd) }
}
func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.n.Add(1); return next(ctx, cmds) }
}

// subscribedQueue is a queue on a fresh prefix and a live subscription to
// its events channel (live before anything is published).
func subscribedQueue(t *testing.T) (*redis.Client, *queue.Queue, *redis.PubSub) {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	q := queue.New(rdb, queue.NewKeys(prefix))
	sub := rdb.Subscribe(t.Context(), q.Keys().Events())
	t.Cleanup(func() { sub.Close() })
	_, err := sub.Receive(t.Context())
	require.NoError(t, err)
	return rdb, q, sub
}

// TestPushPublish: the submit path's push and its event go in one round
// trip (once the script is loaded); the id is queued as Push queues it
// and the event reaches a subscriber of the events channel. A nil event
// publishes nothing.
func TestPushPublish(t *testing.T) {
	t.Parallel()
	rdb, q, sub := subscribedQueue(t)
	ctx := t.Context()
	require.NoError(t, q.Push(ctx, "p", "live", tenant, "warm", 0), "loads the script")

	trips := &commandCounter{}
	rdb.AddHook(trips)
	require.NoError(t, q.PushPublish(ctx, "p", "live", queue.Tenant{Org: "org-2", Weight: 3}, "a", 1, []byte(`{"type":"job.queued"}`)))
	require.EqualValues(t, 1, trips.n.Load(), "push and publish in one round trip")

	select {
	case m := <-sub.Channel():
		require.JSONEq(t, `{"type":"job.queued"}`, m.Payload)
	case <-time.After(10 * time.Second):
		t.Fatal("no event published")
	}
	ids, err := q.Members(ctx, "p", "live")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"warm", "a"}, ids)
	n, err := q.Len(ctx, "p", "live")
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
	w, err := rdb.HGet(ctx, q.Keys().Shares("p", "live"), "w:org-2").Int()
	require.NoError(t, err)
	require.Equal(t, 3, w, "the weight is stored as by Push")

	require.NoError(t, q.PushPublish(ctx, "p", "live", tenant, "b", 0, nil))
	require.NoError(t, q.Publish(ctx, []byte(`{"type":"marker"}`)))
	select {
	case m := <-sub.Channel():
		require.JSONEq(t, `{"type":"marker"}`, m.Payload, "a nil event publishes nothing")
	case <-time.After(10 * time.Second):
		t.Fatal("no marker")
	}
	require.Error(t, q.PushPublish(ctx, "p", "live", queue.Tenant{}, "c", 0, []byte(`{}`)), "the organization is required")
}

// TestPublishMany: several events go in one round trip and reach a
// subscriber in the order given; none is one round trip too.
func TestPublishMany(t *testing.T) {
	t.Parallel()
	rdb, q, sub := subscribedQueue(t)
	ctx := t.Context()
	require.NoError(t, q.Publish(ctx, []byte(`{"n":-1}`), []byte(`{"n":0}`)), "a connection is open")
	trips := &commandCounter{}
	rdb.AddHook(trips)
	want := []string{`{"n":-1}`, `{"n":0}`, `{"n":1}`, `{"n":2}`, `{"n":3}`}
	payloads := make([][]byte, 0, 3)
	for _, w := range want[2:] {
		payloads = append(payloads, []byte(w))
	}
	require.NoError(t, q.Publish(ctx, payloads...))
	require.NoError(t, q.Publish(ctx))
	require.EqualValues(t, 1, trips.n.Load(), "three events in one round trip, none in none")
	for _, w := range want {
		select {
		case m := <-sub.Channel():
			require.JSONEq(t, w, m.Payload)
		case <-time.After(10 * time.Second):
			t.Fatalf("%s not received", w)
		}
	}
}
