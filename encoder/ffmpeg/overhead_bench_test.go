package ffmpeg

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// BenchmarkRunOverhead compares Run (progress parsing, stderr capture,
// directory setup) with the very same FFmpeg arguments run bare, on the same
// input, alternating the order every iteration. The wall-ratio metric is
// Run's time over the bare command's (target ≤ 1.03).
func BenchmarkRunOverhead(b *testing.B) {
	ctx := context.Background()
	ffmpegBin, ffprobeBin := binaries(b)
	input := makeClip(b, clip{width: 1280, height: 720, seconds: 10, audio: true})
	in, err := Probe(ctx, ffprobeBin, input)
	require.NoError(b, err)
	spec := builtin(b, "mp4-720p")
	encoders := []EncoderChoice{{Codec: encodespec.CodecH264, Encoder: "libx264"}}

	// Each side's cost is its wall time and the CPU time of FFmpeg plus this
	// process (the wrapper's own parsing), which other load does not inflate.
	cpu := func() time.Duration {
		var self, kids syscall.Rusage
		require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &self))
		require.NoError(b, syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids))
		return time.Duration(self.Utime.Nano() + self.Stime.Nano() + kids.Utime.Nano() + kids.Stime.Nano())
	}
	var wrappedCPU, bareCPU time.Duration
	wrapped := func(dir string) time.Duration {
		cmd, err := Plan(spec, in, input, dir, encoders)
		require.NoError(b, err)
		c0, start := cpu(), time.Now()
		require.NoError(b, Run(ctx, ffmpegBin, cmd, in.DurationSeconds, func(float64) {}))
		wrappedCPU += cpu() - c0
		return time.Since(start)
	}
	bare := func(dir string) time.Duration {
		cmd, err := Plan(spec, in, input, dir, encoders)
		require.NoError(b, err)
		for _, d := range append([]string{"."}, cmd.Dirs...) {
			require.NoError(b, os.MkdirAll(filepath.Join(dir, d), 0o755))
		}
		c := exec.CommandContext(ctx, ffmpegBin, cmd.Args...)
		c.Dir = dir
		c0, start := cpu(), time.Now()
		out, err := c.CombinedOutput()
		require.NoError(b, err, "%s", out)
		bareCPU += cpu() - c0
		return time.Since(start)
	}
	var wrappedTotal, bareTotal time.Duration
	i := 0
	for b.Loop() {
		dir := b.TempDir()
		a, z := filepath.Join(dir, "wrapped"+strconv.Itoa(i)), filepath.Join(dir, "bare"+strconv.Itoa(i))
		if i%2 == 0 {
			wrappedTotal += wrapped(a)
			bareTotal += bare(z)
		} else {
			bareTotal += bare(z)
			wrappedTotal += wrapped(a)
		}
		i++
	}
	b.ReportMetric(wrappedTotal.Seconds()/float64(i), "run-wall-s/op")
	b.ReportMetric(bareTotal.Seconds()/float64(i), "bare-wall-s/op")
	b.ReportMetric(wrappedTotal.Seconds()/bareTotal.Seconds(), "wall-ratio")
	b.ReportMetric(wrappedCPU.Seconds()/bareCPU.Seconds(), "cpu-ratio")
}
