package jsonw

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// marshal is what encoding/json writes for v.
func marshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// TestWritersAreMarshal: each writer appends what json.Marshal writes for
// the same value, after what the buffer held.
func TestWritersAreMarshal(t *testing.T) {
	t.Parallel()
	prefix := []byte(`{"x":`)
	check := func(t *testing.T, want string, got []byte, err error) {
		t.Helper()
		require.NoError(t, err)
		require.Equal(t, string(prefix)+want, string(got))
	}
	t.Run("strings", func(t *testing.T) {
		t.Parallel()
		for _, s := range []string{"", "plain", `quo"te`, `back\slash`, "<b>&amp;</b>", "tab\tnew\nline", "\x00\x1f\x7f",
			"é ü 日本", "\u2028\u2029", "bad \xff utf-8", "emoji 🎬"} {
			got, err := String(append([]byte(nil), prefix...), s)
			check(t, marshal(t, s), got, err)
		}
	})
	t.Run("uuids", func(t *testing.T) {
		t.Parallel()
		for range 100 {
			u := uuid.New()
			require.Equal(t, string(prefix)+u.String(), string(UUID(append([]byte(nil), prefix...), u)))
		}
	})
	t.Run("times", func(t *testing.T) {
		t.Parallel()
		for _, at := range []time.Time{time.Now(), time.Now().UTC(), time.Unix(0, 0), time.Date(2026, 12, 6, 18, 0, 0, 1, time.FixedZone("x", -5*3600)), {}} {
			got, err := Time(append([]byte(nil), prefix...), at)
			check(t, marshal(t, at), got, err)
		}
		_, err := Time(nil, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))
		require.Error(t, err, "a year past 9999 is refused, as Marshal refuses it")
	})
	t.Run("raw", func(t *testing.T) {
		t.Parallel()
		for _, raw := range []json.RawMessage{nil, json.RawMessage(`{}`), json.RawMessage(`{"a": 1, "b": [1, 2, {"c": "d e"}]}`),
			json.RawMessage(" \n[ true , null ]\t"), json.RawMessage(`{"h": "<script>&</script>", "l": "\u2028"}`),
			json.RawMessage("{\"raw\": \"\u2028 \u2029\"}"), json.RawMessage(`"just a string"`), json.RawMessage(`12.50`)} {
			got, err := Raw(append([]byte(nil), prefix...), raw)
			check(t, marshal(t, raw), got, err)
		}
		for _, bad := range []json.RawMessage{{}, json.RawMessage(`{"a":`), json.RawMessage(`nope`)} {
			_, want := json.Marshal(bad)
			require.Error(t, want)
			_, err := Raw(nil, bad)
			require.Error(t, err, "%q is not JSON", bad)
		}
	})
	t.Run("floats", func(t *testing.T) {
		t.Parallel()
		fs := []float32{0, 1, 0.5, 0.7, 0.1, 1.0 / 3, 1e-6, 9.99e-7, 1e-7, 1e20, 1e21, 3e38, float32(math.Copysign(0, -1)), -0.25,
			math.SmallestNonzeroFloat32, math.MaxFloat32}
		for range 10_000 {
			fs = append(fs, rand.Float32(), math.Float32frombits(rand.Uint32()))
		}
		for _, f := range fs {
			want, wantErr := json.Marshal(f)
			got, err := Float32(append([]byte(nil), prefix...), f)
			if wantErr != nil {
				require.Error(t, err, "%v", f)
				continue
			}
			check(t, string(want), got, err)
		}
	})
	t.Run("ints", func(t *testing.T) {
		t.Parallel()
		for _, n := range []int{0, 1, -1, 100, math.MaxInt, math.MinInt} {
			require.Equal(t, string(prefix)+marshal(t, n), string(Int(append([]byte(nil), prefix...), n)))
		}
	})
}
