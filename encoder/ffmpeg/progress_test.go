package ffmpeg

import (
	"errors"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"
)

func TestParseProgress(t *testing.T) {
	t.Parallel()
	block := func(lines ...string) string { return strings.Join(lines, "\n") + "\n" }
	tests := map[string]struct {
		input    string
		duration float64
		want     []float64
	}{
		"fractions of the duration, 1 at the end": {
			input: block("frame=1", "out_time_us=N/A", "out_time_ms=N/A", "out_time=N/A", "progress=continue") +
				block("out_time_us=2500000", "progress=continue") +
				block("out_time_us=5000000", "progress=continue") +
				block("out_time_us=10000000", "progress=end"),
			duration: 10,
			want:     []float64{0, 0.25, 0.5, 1},
		},
		"never backwards, repeated values reported once": {
			input: block("out_time_us=4000000", "progress=continue") +
				block("out_time_us=3000000", "progress=continue") +
				block("out_time_us=4000000", "progress=continue") +
				block("out_time_us=-9223372036854775807", "progress=continue") +
				block("out_time_us=6000000", "progress=end"),
			duration: 8,
			want:     []float64{0.5, 1},
		},
		"past the duration stays below 1 until the end": {
			input: block("out_time_us=12000000", "progress=continue") +
				block("out_time_us=12100000", "progress=continue") +
				block("progress=end"),
			duration: 10,
			want:     []float64{0.999, 1},
		},
		"out_time_ms carries microseconds too": {
			input:    block("out_time_ms=1000000", "progress=continue"),
			duration: 4,
			want:     []float64{0.25},
		},
		"out_time clock when the counters are missing": {
			input:    block("out_time=00:01:00.000000", "progress=continue"),
			duration: 120,
			want:     []float64{0.5},
		},
		"unknown duration reports only the end": {
			input:    block("out_time_us=1000000", "progress=continue") + block("progress=end"),
			duration: 0,
			want:     []float64{1},
		},
		"no end, no 1": {
			input:    block("out_time_us=1000000", "progress=continue"),
			duration: 2,
			want:     []float64{0.5},
		},
		"windows line endings": {
			input:    "out_time_us=1000000\r\nprogress=continue\r\nprogress=end\r\n",
			duration: 2,
			want:     []float64{0.5, 1},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var got []float64
			require.NoError(t, ParseProgress(strings.NewReader(tt.input), tt.duration, func(f float64) { got = append(got, f) }))
			require.Empty(t, cmp.Diff(tt.want, got, cmpopts.EquateApprox(0, 1e-9)))
		})
	}
}

func TestParseProgressReadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	err := ParseProgress(iotest.ErrReader(boom), 1, func(float64) {})
	require.ErrorIs(t, err, boom)
}
