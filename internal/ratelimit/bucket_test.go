package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

// TestTakeScriptContract calls takeScript with literal ARGV and checks its
// reply, the state it leaves and the expiry it sets, against its contract
// comment. Buckets here hold 3 tokens and refill 2 per second (period
// 1000 ms), so a token is 1000 units, the bucket 3000, and 2 units come back
// per millisecond.
func TestTakeScriptContract(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	keys := queue.NewKeys(prefix)
	const now = "1000000"
	type state struct{ Level, At string }
	tests := map[string]struct {
		before map[string]state // bucket name → HASH before (no expiry)
		argv   []string         // after ARGV[1] = now
		names  []string         // KEYS, by bucket name
		want   []int64
		after  map[string]state         // absent = the bucket does not exist
		pttl   map[string]time.Duration // until full again; the bucket expires expirySlack later
	}{
		"a missing bucket is full; spending one leaves two and expires a slack after full again": {
			names: []string{"a"}, argv: []string{"3", "2", "1000", "1"},
			want:  []int64{1, 2, 500, 0},
			after: map[string]state{"a": {"2000", now}}, pttl: map[string]time.Duration{"a": 500 * time.Millisecond},
		},
		"requiring a token writes nothing": {
			names: []string{"a"}, argv: []string{"3", "2", "1000", "0"},
			want: []int64{1, 3, 0, 0},
		},
		"half a token refuses, writes nothing, and says when one is there": {
			before: map[string]state{"a": {"500", now}},
			names:  []string{"a"}, argv: []string{"3", "2", "1000", "1"},
			want:  []int64{0, 0, 1250, 250},
			after: map[string]state{"a": {"500", now}},
		},
		"elapsed time refills rate units per millisecond": {
			before: map[string]state{"a": {"0", "999400"}},
			names:  []string{"a"}, argv: []string{"3", "2", "1000", "1"},
			want:  []int64{1, 0, 1400, 400}, // 600 ms → 1200 units, minus 1000
			after: map[string]state{"a": {"200", now}}, pttl: map[string]time.Duration{"a": 1400 * time.Millisecond},
		},
		"refill stops at the burst": {
			before: map[string]state{"a": {"0", "0"}},
			names:  []string{"a"}, argv: []string{"3", "2", "1000", "1"},
			want:  []int64{1, 2, 500, 0},
			after: map[string]state{"a": {"2000", now}},
		},
		"a lowered burst caps a fuller bucket": {
			before: map[string]state{"a": {"10000", now}},
			names:  []string{"a"}, argv: []string{"3", "2", "1000", "1"},
			want:  []int64{1, 2, 500, 0},
			after: map[string]state{"a": {"2000", now}},
		},
		"a clock behind the stamp refills nothing and keeps the stamp": {
			before: map[string]state{"a": {"1500", "1000900"}},
			names:  []string{"a"}, argv: []string{"3", "2", "1000", "1"},
			want:  []int64{1, 0, 1250, 250},
			after: map[string]state{"a": {"500", "1000900"}},
		},
		"per-minute rate: 60/m refills one token a second": {
			names: []string{"a"}, argv: []string{"2", "60", "60000", "1"},
			want:  []int64{1, 1, 1000, 0},
			after: map[string]state{"a": {"60000", now}}, pttl: map[string]time.Duration{"a": time.Second},
		},
		"several buckets: all spend together": {
			names: []string{"ip", "key", "org"},
			argv:  []string{"3", "2", "1000", "0", "3", "2", "1000", "1", "5", "2", "1000", "1"},
			want:  []int64{1, 3, 0, 0, 2, 500, 0, 4, 500, 0},
			after: map[string]state{"key": {"2000", now}, "org": {"4000", now}},
		},
		"several buckets: one empty refuses and none spends": {
			before: map[string]state{"org": {"0", now}},
			names:  []string{"key", "org"},
			argv:   []string{"3", "2", "1000", "1", "5", "2", "1000", "1"},
			want:   []int64{0, 3, 0, 0, 0, 2500, 500},
			after:  map[string]state{"org": {"0", now}},
		},
		"an empty required bucket refuses the spending ones": {
			before: map[string]state{"ip": {"999", now}},
			names:  []string{"ip", "key"},
			argv:   []string{"3", "2", "1000", "0", "3", "2", "1000", "1"},
			want:   []int64{0, 0, 1001, 1, 3, 0, 0},
			after:  map[string]state{"ip": {"999", now}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			key := func(bucket string) string { return keys.RateLimitKey(name + "/" + bucket) }
			for b, st := range tc.before {
				require.NoError(t, rdb.HSet(ctx, key(b), "level", st.Level, "at", st.At).Err())
			}
			var ks []string
			for _, b := range tc.names {
				ks = append(ks, key(b))
			}
			args := []any{now}
			for _, a := range tc.argv {
				args = append(args, a)
			}
			got, err := takeScript.Run(ctx, rdb, ks, args...).Int64Slice()
			require.NoError(t, err)
			assert.Equal(t, tc.want, got, "reply")
			for _, b := range tc.names {
				h, err := rdb.HGetAll(ctx, key(b)).Result()
				require.NoError(t, err)
				want, exists := tc.after[b]
				if !exists {
					assert.Empty(t, h, "bucket %s must not exist", b)
					continue
				}
				if diff := cmp.Diff(map[string]string{"level": want.Level, "at": want.At}, h); diff != "" {
					t.Errorf("bucket %s (-want +got):\n%s", b, diff)
				}
				pttl, err := rdb.PTTL(ctx, key(b)).Result()
				require.NoError(t, err)
				if before, ok := tc.before[b]; ok && before == want {
					assert.Equal(t, time.Duration(-1), pttl, "bucket %s was not written: no expiry set", b)
					continue
				}
				assert.Positive(t, pttl, "bucket %s must expire", b)
				if w, ok := tc.pttl[b]; ok {
					// PTTL counts down from the script's PEXPIRE on Redis's clock.
					w += expirySlack
					assert.LessOrEqual(t, pttl, w, "bucket %s expiry", b)
					assert.Greater(t, pttl, w-250*time.Millisecond, "bucket %s expiry", b)
				}
			}
		})
	}
}
