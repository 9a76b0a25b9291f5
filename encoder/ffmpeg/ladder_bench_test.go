package ffmpeg

import (
	"context"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// BenchmarkLadderOneProcessVsPerRendition compares the encoder's design,
// one FFmpeg process that decodes once and encodes a 1080/720/480 H.264
// ladder (the built-in ladder's bitrates and profiles, HLS packaging,
// shared audio), with the naive alternative of one FFmpeg process per
// rendition run one after another, each decoding the input and encoding the
// audio again. The input is a 20 s 1080p H.264 clip. It reports the wall
// seconds of each per iteration and their ratio (per-rendition /
// one-process; above 1 means the single process is faster), and the same
// for the CPU time of the FFmpeg processes, which other load on the machine
// does not skew. Run it with -benchtime=1x or 2x: an iteration encodes the
// ladder twice.
//
// It runs once per x264 preset: what decoding once saves is a fixed cost,
// so its share, and the ratio, is largest where encoding is cheap.
// "veryfast" is the regime of the reference figure (a 20 s ladder
// in 13.7 s on this machine, faster than real time); "medium" is the
// built-in hls-ladder's own preset, where x264 dominates.
func BenchmarkLadderOneProcessVsPerRendition(b *testing.B) {
	for _, preset := range []string{"veryfast", "medium"} {
		b.Run("preset="+preset, func(b *testing.B) { benchmarkLadder(b, preset) })
	}
}

func benchmarkLadder(b *testing.B, preset string) {
	ctx := context.Background()
	ffmpegBin, ffprobeBin := binaries(b)
	// A source like real 1080p footage rather than a flat test pattern:
	// film grain, High profile with CABAC and B-frames, 12 Mbit/s. Decoding it
	// costs what decoding a camera or mezzanine file costs, which is what
	// decoding once saves.
	input := makeClip(b, clip{width: 1920, height: 1080, seconds: 20, audio: true, extra: []string{
		"-vf", "noise=alls=12:allf=t+u", "-preset", "medium", "-profile:v", "high",
		"-b:v", "12M", "-maxrate", "12M", "-bufsize", "24M"}})
	in, err := Probe(ctx, ffprobeBin, input)
	require.NoError(b, err)

	ladder := builtin(b, "hls-ladder")
	ladder.Renditions = ladder.Renditions[:3] // 1080p, 720p, 480p
	for i := range ladder.Renditions {
		ladder.Renditions[i].Preset = preset
	}
	encoders := []EncoderChoice{{Codec: encodespec.CodecH264, Encoder: "libx264"}}

	// run encodes spec and returns its wall time and the CPU time (user +
	// system) of the FFmpeg processes it waited for, which the machine's
	// other load does not inflate.
	run := func(spec encodespec.Spec, outDir string) (wall, cpu time.Duration) {
		cmd, err := Plan(spec, in, input, outDir, encoders)
		require.NoError(b, err)
		before := childrenCPU(b)
		start := time.Now()
		require.NoError(b, Run(ctx, ffmpegBin, cmd, in.DurationSeconds, nil))
		return time.Since(start), childrenCPU(b) - before
	}
	onePass := func(dir string) (time.Duration, time.Duration) {
		return run(ladder, filepath.Join(dir, "one"))
	}
	perRendition := func(dir string) (wall, cpu time.Duration) {
		for i, r := range ladder.Renditions {
			single := ladder.Clone()
			single.Renditions = []encodespec.Rendition{r}
			w, c := run(single, filepath.Join(dir, "per", strconv.Itoa(i)))
			wall, cpu = wall+w, cpu+c
		}
		return wall, cpu
	}

	var oneWall, oneCPU, perWall, perCPU time.Duration
	iterations := 0
	for b.Loop() {
		dir := b.TempDir()
		// Alternate the order so neither side always runs on a warmer
		// (or busier) machine.
		first, second := onePass, perRendition
		if iterations%2 == 1 {
			first, second = perRendition, onePass
		}
		w1, c1 := first(dir)
		w2, c2 := second(dir)
		if iterations%2 == 1 {
			w1, c1, w2, c2 = w2, c2, w1, c1
		}
		oneWall, oneCPU, perWall, perCPU = oneWall+w1, oneCPU+c1, perWall+w2, perCPU+c2
		iterations++
	}
	n := float64(iterations)
	b.ReportMetric(oneWall.Seconds()/n, "one-process-wall-s/op")
	b.ReportMetric(perWall.Seconds()/n, "per-rendition-wall-s/op")
	b.ReportMetric(perWall.Seconds()/oneWall.Seconds(), "wall-ratio")
	b.ReportMetric(oneCPU.Seconds()/n, "one-process-cpu-s/op")
	b.ReportMetric(perCPU.Seconds()/n, "per-rendition-cpu-s/op")
	b.ReportMetric(perCPU.Seconds()/oneCPU.Seconds(), "cpu-ratio")
}

// childrenCPU is the user plus system CPU time of all waited-for child
// processes so far.
func childrenCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
