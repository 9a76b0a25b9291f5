package queue_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

// commandCounter counts round trips to Redis (n: one per command or
// pipeline) and the commands they carry (cmds).
type commandCounter struct{ n, cmds atomic.Int64 }

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.n.Add(1); c.cmds.Add(1); return next(ctx, cmd) }
}
func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(1)
		c.cmds.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// subscribedQueue is a queue on a fresh prefix and a live subscription to
// its events channel (live before anything is published).
func subscribedQueue(t *testing.T) (*redis.Client, *queue.Queue, *redis.PubSub) {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	return subscribedQueueOn(t, rdb, prefix)
}

// subscribedQueueOn is subscribedQueue on rdb under prefix.
func subscribedQueueOn(t *testing.T, rdb *redis.Client, prefix string) (*redis.Client, *queue.Queue, *redis.PubSub) {
	t.Helper()
	q := queue.New(rdb, queue.NewKeys(prefix))
	sub := rdb.Subscribe(t.Context(), q.Keys().Events())
	t.Cleanup(func() { sub.Close() })
	_, err := sub.Receive(t.Context())
	require.NoError(t, err)
	return rdb, q, sub
}

// pushPublish makes one push of PushPublishMany.
func pushPublish(ctx context.Context, q *queue.Queue, p queue.JobPush) error {
	return q.PushPublishMany(ctx, []queue.JobPush{p})[0]
}

// TestPushPublish: the submit path's push and its event go in one round
// trip (once the script is loaded); the id is queued as Push queues it
// and the event reaches a subscriber of the events channel. A nil event
// publishes nothing.
func TestPushPublish(t *testing.T) {
	t.Parallel()
	rdb, q, sub := subscribedQueue(t)
	ctx := t.Context()
	require.NoError(t, pushPublish(ctx, q, queue.JobPush{Pool: "p", Lane: "live", Tenant: tenant, JobID: "warm"}), "loads the script, opens a connection")

	trips := &commandCounter{}
	rdb.AddHook(trips)
	require.NoError(t, pushPublish(ctx, q, queue.JobPush{Pool: "p", Lane: "live", Tenant: queue.Tenant{Org: "org-2", Weight: 3}, JobID: "a", Priority: 1, Event: []byte(`{"type":"job.queued"}`)}))
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

	require.NoError(t, pushPublish(ctx, q, queue.JobPush{Pool: "p", Lane: "live", Tenant: tenant, JobID: "b"}))
	require.NoError(t, q.Publish(ctx, []byte(`{"type":"marker"}`)))
	select {
	case m := <-sub.Channel():
		require.JSONEq(t, `{"type":"marker"}`, m.Payload, "a nil event publishes nothing")
	case <-time.After(10 * time.Second):
		t.Fatal("no marker")
	}
	require.Error(t, pushPublish(ctx, q, queue.JobPush{Pool: "p", Lane: "live", JobID: "c", Event: []byte(`{}`)}), "the organization is required")
}

// TestPublishMany: several events go in one message, one round trip,
// and come out of it (queue.Events) in the order given; none is no round
// trip; a payload that holds a newline is refused with the rest, nothing
// published.
func TestPublishMany(t *testing.T) {
	t.Parallel()
	rdb, q, sub := subscribedQueue(t)
	ctx := t.Context()
	require.NoError(t, q.Publish(ctx, []byte(`{"n":-1}`), []byte(`{"n":0}`)), "a connection is open")
	trips := &commandCounter{}
	rdb.AddHook(trips)
	payloads := [][]byte{[]byte(`{"n":1}`), []byte(`{"n":2}`), []byte(`{"n":3}`)}
	require.NoError(t, q.Publish(ctx, payloads...))
	require.NoError(t, q.Publish(ctx))
	require.EqualValues(t, 1, trips.n.Load(), "three events in one round trip, none in none")
	err := q.Publish(ctx, []byte(`{"n":4}`), []byte("{\"n\":\n5}"))
	require.ErrorContains(t, err, "newline")
	require.NoError(t, q.Publish(ctx, []byte(`{"n":6}`)))
	var got [][]string
	for range 3 {
		select {
		case m := <-sub.Channel():
			got = append(got, slices.Collect(queue.Events(m.Payload)))
		case <-time.After(10 * time.Second):
			t.Fatalf("received only %v", got)
		}
	}
	require.Equal(t, [][]string{{`{"n":-1}`, `{"n":0}`}, {`{"n":1}`, `{"n":2}`, `{"n":3}`}, {`{"n":6}`}}, got,
		"a message per Publish, its events in order; the refused one sent nothing")
}

// TestEvents: a message's events are its newline-separated payloads; a
// lone event is the message; empty pieces are no events.
func TestEvents(t *testing.T) {
	t.Parallel()
	for msg, want := range map[string][]string{
		`{"a":1}`:              {`{"a":1}`},
		"{\"a\":1}\n{\"b\":2}": {`{"a":1}`, `{"b":2}`},
		"":                     nil,
		"\n{\"a\":1}\n\n":      {`{"a":1}`},
	} {
		require.Equal(t, want, slices.Collect(queue.Events(msg)), "%q", msg)
	}
}

// TestPushPublishMany: pushes of several pools, lanes and organizations go
// in one round trip, each queued and announced as a lone one; one
// without an organization fails alone; pushes Redis refused for want of
// the script are made once it is loaded again, none twice. (On a Redis of
// its own: it flushes the scripts, which would fail other tests' counts.)
func TestPushPublishMany(t *testing.T) {
	t.Parallel()
	rdb, q, sub := subscribedQueueOn(t, testenv.PrivateRedis(t), queue.DefaultPrefix)
	ctx := t.Context()
	require.Equal(t, []error{nil}, q.PushPublishMany(ctx, []queue.JobPush{{Pool: "p", Lane: "live", Tenant: tenant, JobID: "warm"}}),
		"loads the script, opens a connection")

	trips := &commandCounter{}
	rdb.AddHook(trips)
	errs := q.PushPublishMany(ctx, []queue.JobPush{
		{Pool: "p", Lane: "live", Tenant: tenant, JobID: "a", Event: []byte(`{"n":1}`)},
		{Pool: "p", Lane: "live", Tenant: queue.Tenant{}, JobID: "lost", Event: []byte(`{"n":0}`)},
		{Pool: "p", Lane: "backfill", Tenant: queue.Tenant{Org: "org-2", Weight: 4}, JobID: "b", Event: []byte(`{"n":2}`)},
		{Pool: "p", Lane: "live", Tenant: tenant, JobID: "urgent", Priority: 5},
	})
	require.EqualValues(t, 1, trips.n.Load(), "one round trip")
	require.Len(t, errs, 4)
	require.NoError(t, errs[0])
	require.Error(t, errs[1], "the organization is required")
	require.NoError(t, errs[2])
	require.NoError(t, errs[3])
	for _, w := range []string{`{"n":1}`, `{"n":2}`} {
		select {
		case m := <-sub.Channel():
			require.JSONEq(t, w, m.Payload, "each event once, in order; none for the refused push or a nil event")
		case <-time.After(10 * time.Second):
			t.Fatalf("%s not received", w)
		}
	}
	live, err := q.Members(ctx, "p", "live")
	require.NoError(t, err)
	require.Equal(t, []string{"a", "warm", "urgent"}, live, "as Push queues them: pops take the right end, so the urgent one goes next")
	backfill, err := q.Members(ctx, "p", "backfill")
	require.NoError(t, err)
	require.Equal(t, []string{"b"}, backfill)
	w, err := rdb.HGet(ctx, q.Keys().Shares("p", "backfill"), "w:org-2").Int()
	require.NoError(t, err)
	require.Equal(t, 4, w)

	require.NoError(t, rdb.ScriptFlush(ctx).Err())
	errs = q.PushPublishMany(ctx, []queue.JobPush{{Pool: "p", Lane: "backfill", Tenant: tenant, JobID: "c"}, {Pool: "p", Lane: "backfill", Tenant: tenant, JobID: "d"}})
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	n, err := q.Len(ctx, "p", "backfill")
	require.NoError(t, err)
	require.EqualValues(t, 3, n, "each push made once the script was loaded again, none twice")
}
