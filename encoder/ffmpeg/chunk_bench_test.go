package ffmpeg

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// BenchmarkChunkedEncode compares one process encoding a whole 1080p input
// with the same input encoded in chunks and stitched, as the chunk tasks
// and the stitch task do. The ladder is the built-in hls-ladder (1080p,
// 720p, 480p, 360p at x264 medium, AAC audio); the input is FFmpeg's
// moving test pattern with film grain and a tone, nearly lossless, of
// MPEGFLOW_CHUNK_BENCH_SECONDS (default 30) cut into chunks of
// MPEGFLOW_CHUNK_BENCH_CHUNK seconds (default 10).
//
// Per iteration it reports, for the single encode and the chunked one:
// CPU seconds of all FFmpeg and ffprobe processes (each side's Verify,
// and the chunked side's keyframe index, whole-input part and seam checks
// included), the CPU ratio (chunked / single: the issue's
// per-CPU efficiency, target ≤ 1.05), wall seconds with two chunk
// encoders at a time on this machine, the longest chunk's wall seconds
// (alone on the machine; the input of the time-to-publish model), the
// whole-input part's and the stitch's wall seconds, and the
// PSNR (dB) and SSIM of every rendition of both against the source, with
// the largest differences (target ≤ 0.1 dB and ≤ 0.001). Run it with
// -benchtime=1x: an iteration encodes the input twice.
func BenchmarkChunkedEncode(b *testing.B) {
	seconds := envSeconds(b, "MPEGFLOW_CHUNK_BENCH_SECONDS", 30)
	chunkSeconds := envSeconds(b, "MPEGFLOW_CHUNK_BENCH_CHUNK", 10)
	input := perTitleInput(b, "testsrc2=size=1920x1080:rate=25", seconds, "noise=alls=12:allf=t+u")
	input = withTone(b, input, seconds)
	for b.Loop() {
		benchmarkChunked(b, input, chunkSeconds)
	}
}

func benchmarkChunked(b *testing.B, input string, chunkSeconds float64) {
	ctx := context.Background()
	ffmpegBin, ffprobeBin := binaries(b)
	in, err := Probe(ctx, ffprobeBin, input)
	require.NoError(b, err)
	// The ladder as a workflow asking for chunking would encode it: the
	// same capped-CRF rate control in one pod and in chunks.
	spec := builtin(b, "hls-ladder")
	spec.Chunking = &encodespec.Chunking{ChunkSeconds: chunkSeconds}
	encoders := chooseCPU(b, spec)

	cpu0, start := childrenCPU(b), time.Now()
	single := plan(b, spec, in, input)
	require.NoError(b, Run(ctx, ffmpegBin, single, in.DurationSeconds, nil))
	singleOutputs, err := Collect(single)
	require.NoError(b, err)
	require.NoError(b, Verify(ctx, ffprobeBin, single, singleOutputs, in))
	singleWall, singleCPU := time.Since(start), childrenCPU(b)-cpu0

	cpu0, start = childrenCPU(b), time.Now()
	keys, err := Keyframes(ctx, ffprobeBin, input, in)
	require.NoError(b, err)
	chunks, err := PlanChunks(in.DurationSeconds, keys, spec.SegmentSeconds, chunkSeconds)
	require.NoError(b, err)
	splitWall := time.Since(start)
	parts := make([]Command, len(chunks))
	for i, c := range chunks {
		parts[i], err = Plan(spec, in, input, filepath.Join(b.TempDir(), "chunk"), encoders, WithChunk(c))
		require.NoError(b, err)
	}
	whole, err := Plan(spec, in, input, filepath.Join(b.TempDir(), "whole"), encoders, WithWholeInput())
	require.NoError(b, err)
	// Two tasks at a time, as two pods would run on this machine's two
	// cores: the whole-input part first, then the chunks in order.
	tasks := append([]Command{whole}, parts...)
	seconds := []float64{in.DurationSeconds}
	for _, c := range chunks {
		seconds = append(seconds, c.Seconds())
	}
	errs := make([]error, len(tasks))
	walls := make([]time.Duration, len(tasks))
	work := make(chan int)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for i := range work {
				t := time.Now()
				errs[i] = Run(ctx, ffmpegBin, tasks[i], seconds[i], nil)
				walls[i] = time.Since(t)
			}
		})
	}
	for i := range tasks {
		work <- i
	}
	close(work)
	wg.Wait()
	for i, err := range errs {
		require.NoError(b, err, "task %d", i)
	}
	stitchStart := time.Now()
	stitched, err := Stitch(ctx, ffmpegBin, filepath.Join(b.TempDir(), "stitched"), in, chunks, parts, whole)
	require.NoError(b, err)
	outputs, err := Collect(stitched)
	require.NoError(b, err)
	require.NoError(b, Verify(ctx, ffprobeBin, stitched, outputs, in))
	require.NoError(b, CheckSeams(stitched, in))
	chunkedWall, chunkedCPU, stitchWall := time.Since(start), childrenCPU(b)-cpu0, time.Since(stitchStart)
	for i, w := range walls {
		b.Logf("task %d (%.1f s of input): %.1f s wall beside another task", i, seconds[i], w.Seconds())
	}

	// The longest chunk alone, for the model: a pod with this machine's
	// two cores. (Chunks are about equally long and alike in content; the
	// longest bounds the time-to-publish of a pool with a pod per chunk.)
	var longest time.Duration
	c := chunks[0]
	for _, ch := range chunks {
		if ch.Seconds() > c.Seconds() {
			c = ch
		}
	}
	cmd, err := Plan(spec, in, input, filepath.Join(b.TempDir(), "alone"), encoders, WithChunk(c))
	require.NoError(b, err)
	t := time.Now()
	require.NoError(b, Run(ctx, ffmpegBin, cmd, c.Seconds(), nil))
	longest = time.Since(t)
	require.NoError(b, os.RemoveAll(cmd.OutDir))
	b.ReportMetric(c.Seconds(), "longest-chunk-s")

	var worstPSNR, worstSSIM float64
	for _, r := range spec.ForSource(in.Width, in.Height).Renditions {
		w, h := r.OutputSize(in.Width, in.Height)
		sp, ss := quality(b, filepath.Join(single.OutDir, r.Name, "index.m3u8"), input, w, h)
		cp, cs := quality(b, filepath.Join(stitched.OutDir, r.Name, "index.m3u8"), input, w, h)
		b.ReportMetric(sp, "single-psnr-"+r.Name+"-dB")
		b.ReportMetric(cp, "chunked-psnr-"+r.Name+"-dB")
		b.ReportMetric(ss, "single-ssim-"+r.Name)
		b.ReportMetric(cs, "chunked-ssim-"+r.Name)
		worstPSNR, worstSSIM = max(worstPSNR, sp-cp), max(worstSSIM, ss-cs)
		b.Logf("%s: PSNR %.3f → %.3f dB, SSIM %.5f → %.5f", r.Name, sp, cp, ss, cs)
	}
	b.ReportMetric(float64(len(chunks)), "chunks")
	b.ReportMetric(singleCPU.Seconds(), "single-cpu-s")
	b.ReportMetric(chunkedCPU.Seconds(), "chunked-cpu-s")
	b.ReportMetric(chunkedCPU.Seconds()/singleCPU.Seconds(), "cpu-ratio")
	b.ReportMetric(singleWall.Seconds(), "single-wall-s")
	b.ReportMetric(chunkedWall.Seconds(), "chunked-wall-s")
	b.ReportMetric(longest.Seconds(), "longest-chunk-alone-s")
	b.ReportMetric(splitWall.Seconds(), "split-s")
	b.ReportMetric(walls[0].Seconds(), "whole-part-s")
	b.ReportMetric(stitchWall.Seconds(), "stitch-s")
	b.ReportMetric(worstPSNR, "psnr-loss-dB")
	b.ReportMetric(worstSSIM, "ssim-loss")
}

// envSeconds reads a positive number of seconds from the environment.
func envSeconds(b *testing.B, name string, def float64) float64 {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	require.NoError(b, err, name)
	require.Positive(b, f, name)
	return f
}

// withTone adds a 440 Hz AAC tone to a video-only input.
func withTone(b *testing.B, video string, seconds float64) string {
	ffmpegBin, _ := binaries(b)
	out := filepath.Join(b.TempDir(), "with-tone.mp4")
	d := strconv.FormatFloat(seconds, 'f', -1, 64)
	cmd := []string{"-nostdin", "-v", "error", "-y", "-i", video, "-f", "lavfi", "-i", "sine=frequency=440:duration=" + d,
		"-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-shortest", out}
	outb, err := exec.Command(ffmpegBin, cmd...).CombinedOutput()
	require.NoError(b, err, "%s", outb)
	return out
}
