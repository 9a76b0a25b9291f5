package events

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEncodeIsMarshal: encode writes what json.Marshal writes, byte for
// byte, for events with and without each optional field, strings that
// need escaping (quotes, control characters, HTML's three, non-ASCII,
// invalid UTF-8, U+2028) and data of every shape the coordinator and the
// API post; and it refuses what Marshal refuses.
func TestEncodeIsMarshal(t *testing.T) {
	t.Parallel()
	org, job := uuid.MustParse("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"), uuid.MustParse("ffffffff-0000-4000-8000-123456789abc")
	at := time.Date(2026, 12, 6, 15, 4, 5, 123456789, time.UTC)
	tests := []struct {
		name string
		e    Event
	}{
		{name: "job started", e: Event{ID: uuid.Must(uuid.NewV7()), Type: "job.started", OrgID: &org, JobID: &job, PoolID: "default", Data: map[string]any{"worker_id": "pod-1", "attempt": 1}, At: at}},
		{name: "no optional fields", e: Event{Type: "pool.paused", At: at}},
		{name: "empty data is left out", e: Event{Type: "job.queued", JobID: &job, Data: map[string]any{}, At: at.Truncate(time.Second)}},
		{name: "nested data", e: Event{Type: "task.completed", OrgID: &org, Data: map[string]any{"outputs": 3, "chunk": 7, "task_id": job, "z": []any{1.5, "x", nil, true}, "m": map[string]any{"b": 1, "a": "<&>"}}, At: at}},
		{name: "data of every kind", e: Event{Type: "job.progress", Data: map[string]any{"n": int32(-7), "big": int64(math.MaxInt64), "ok": false, "none": nil,
			"f": 0.000001, "g": 1e21, "id": org, "s": "a\"b", "k<\u00e9>": "v", "": "empty key", "ptr": &job}, At: at}},
		{name: "strings that need escaping", e: Event{Type: "job.\"odd\"\\type\n<b>&", PoolID: "pool\x00\u2028é\xff", At: at}},
		{name: "only HTML's characters to escape", e: Event{Type: "a<b>c&d", PoolID: "<>", Data: map[string]any{"&": "x<y"}, At: at}},
		{name: "a zone other than UTC", e: Event{Type: "job.failed", At: at.In(time.FixedZone("", 5*3600+1800))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want, err := json.Marshal(&tt.e)
			require.NoError(t, err)
			got, err := encode(&tt.e)
			require.NoError(t, err)
			assert.Equal(t, string(want), string(got))
		})
	}
	for name, e := range map[string]Event{
		"data Marshal refuses": {Type: "x", Data: map[string]any{"f": math.Inf(1)}, At: at},
		"a year past 9999":     {Type: "x", At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		_, want := json.Marshal(&e)
		require.Error(t, want, name)
		_, err := encode(&e)
		assert.Error(t, err, name)
	}
}

func BenchmarkEncode(b *testing.B) {
	org, job := uuid.New(), uuid.New()
	e := Event{ID: uuid.Must(uuid.NewV7()), Type: "job.started", OrgID: &org, JobID: &job, PoolID: "default", Data: map[string]any{"worker_id": "pod-1", "attempt": 1}, At: time.Now()}
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			if _, err := encode(&e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("marshal", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(&e); err != nil {
				b.Fatal(err)
			}
		}
	})
}
