package ffmpeg

import (
	"bytes"
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/encodespec"
)

func TestPlanChunks(t *testing.T) {
	t.Parallel()
	every := func(step, until float64) []float64 {
		var ks []float64
		for k := 0.0; k <= until; k += step {
			ks = append(ks, k)
		}
		return ks
	}
	tests := []struct {
		name                 string
		duration, seg, chunk float64
		keyframes            []float64
		wantStarts           []float64
		wantErr              string
	}{
		{name: "even split", duration: 60, seg: 2, chunk: 10, wantStarts: []float64{0, 10, 20, 30, 40, 50}},
		{name: "keyframes every segment change nothing", duration: 60, seg: 2, chunk: 10, keyframes: every(2, 60), wantStarts: []float64{0, 10, 20, 30, 40, 50}},
		// Keyframes every 3 s: 12 s is both a grid point and a keyframe,
		// 10 s is a second after one; then 24, 36, 48 (each a keyframe).
		{name: "boundaries move onto keyframes", duration: 60, seg: 2, chunk: 10, keyframes: every(3, 60), wantStarts: []float64{0, 12, 24, 36, 48}},
		{name: "a short remainder joins the last chunk", duration: 64.5, seg: 2, chunk: 10, wantStarts: []float64{0, 10, 20, 30, 40, 50}},
		{name: "a long remainder is its own chunk", duration: 66, seg: 2, chunk: 10, wantStarts: []float64{0, 10, 20, 30, 40, 50, 60}},
		{name: "short input is one chunk", duration: 14, seg: 2, chunk: 10, wantStarts: []float64{0}},
		{name: "chunk length rounds to whole segments", duration: 40, seg: 4, chunk: 9, wantStarts: []float64{0, 8, 16, 24, 32}},
		// The keyframe at 12 s is too late: half a chunk must follow the
		// boundary, so it goes to 8 s (a keyframe-free 8 s beats 10 s).
		{name: "a boundary moved for a keyframe still leaves half a chunk", duration: 16, seg: 2, chunk: 10, keyframes: []float64{0, 12}, wantStarts: []float64{0, 8}},
		{name: "one chunk and a half is two chunks", duration: 15, seg: 2, chunk: 10, wantStarts: []float64{0, 10}},
		{name: "just under one chunk and a half is one", duration: 14.9, seg: 2, chunk: 10, wantStarts: []float64{0}},
		{name: "zero duration", duration: 0, seg: 2, chunk: 10, wantErr: "not a positive number"},
		{name: "NaN segment", duration: 60, seg: math.NaN(), chunk: 10, wantErr: "not a positive number"},
		{name: "infinite chunk", duration: 60, seg: 2, chunk: math.Inf(1), wantErr: "not a positive number"},
		{name: "a duration no real input has", duration: 1e9, seg: 2, chunk: 60, wantErr: "more than 3600 chunks"},
		{name: "chunk shorter than a segment", duration: 60, seg: 4, chunk: 2, wantErr: "shorter than a segment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunks, err := PlanChunks(tt.duration, tt.keyframes, tt.seg, tt.chunk)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			var starts []float64
			for i, c := range chunks {
				starts = append(starts, c.Start)
				assert.Equal(t, i, c.Index)
				if i > 0 {
					assert.Equal(t, chunks[i-1].End, c.Start, "chunk %d follows the one before", i)
				}
			}
			assert.Equal(t, tt.wantStarts, starts)
			assert.Equal(t, tt.duration, chunks[len(chunks)-1].End)
		})
	}
}

func TestChunkableSpecs(t *testing.T) {
	t.Parallel()
	hls := builtin(t, "hls-ladder")
	assert.Empty(t, Chunkable(hls))
	enc := hls.Clone()
	enc.Encryption = &encodespec.Encryption{Method: encodespec.EncryptAES128}
	assert.Contains(t, Chunkable(enc), "encrypt")

	in := MediaInfo{DurationSeconds: 20, Width: 640, Height: 360, HasVideo: true, FrameRate: 25, Container: "mov"}
	_, err := Plan(enc, in, "in.mp4", t.TempDir(), cpuEncoders, WithChunk(Chunk{End: 10}))
	require.ErrorContains(t, err, "does not encrypt")
	_, err = Plan(hls, in, "in.mp4", t.TempDir(), cpuEncoders, WithChunk(Chunk{Start: 3, End: 10, FirstSegment: 0}))
	require.ErrorContains(t, err, "not segment 0's start")
	_, err = Plan(hls, in, "in.mp4", t.TempDir(), cpuEncoders, WithChunk(Chunk{Start: 16, End: 30, FirstSegment: 4}))
	require.ErrorContains(t, err, "outside the input")
}

// chunkedSpec is a small two-rung HLS ladder with audio, thumbnails and a
// poster: enough to see every part of a chunked encode.
func chunkedSpec() encodespec.Spec {
	return encodespec.Spec{
		Packaging:      encodespec.PackagingHLS,
		SegmentSeconds: 2,
		Renditions: []encodespec.Rendition{
			{Name: "360p", Height: 360, Codec: encodespec.CodecH264, BitrateKbps: 600, Preset: "veryfast"},
			{Name: "240p", Height: 240, Codec: encodespec.CodecH264, BitrateKbps: 300, Preset: "veryfast"},
		},
		Audio:      &encodespec.Audio{Codec: encodespec.AudioAAC, BitrateKbps: 96, Channels: 2},
		Thumbnails: &encodespec.Thumbnails{Width: 160, IntervalSeconds: 10, Poster: true},
		Chunking:   &encodespec.Chunking{ChunkSeconds: 10},
	}
}

// TestChunkedSpecsUseCappedCRF checks the rate control of a chunked spec:
// x264 renditions with a bitrate are encoded at the chunking's CRF under
// their bitrate as the cap, in a chunk and in a one-pod encode alike, so
// every chunk spends bits the same way; without chunking they keep
// average-bitrate control.
func TestChunkedSpecsUseCappedCRF(t *testing.T) {
	t.Parallel()
	input := makeClip(t, clip{width: 640, height: 360, seconds: 4})
	in := probeClip(t, input)
	chunk := Chunk{Index: 1, Start: 2, End: 4, FirstSegment: 1}
	for _, tt := range []struct {
		name     string
		chunking *encodespec.Chunking
		opts     []PlanOption
		want     []string
	}{
		{"one pod, default CRF", &encodespec.Chunking{ChunkSeconds: 10}, nil, []string{"-crf:v:0 23 -maxrate:v:0 720k -bufsize:v:0 1200k", "-crf:v:0 23 -maxrate:v:0 360k -bufsize:v:0 600k"}},
		{"a chunk, CRF set", &encodespec.Chunking{ChunkSeconds: 10, CRF: 30}, []PlanOption{WithChunk(chunk)}, []string{"-crf:v:0 30 -maxrate:v:0 720k", "-crf:v:0 30 -maxrate:v:0 360k"}},
		{"no chunking", nil, nil, []string{"-b:v:0 600k -maxrate:v:0 720k", "-b:v:0 300k -maxrate:v:0 360k"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spec := chunkedSpec()
			spec.Chunking = tt.chunking
			args := strings.Join(plan(t, spec, in, input, tt.opts...).Args, " ")
			for _, w := range tt.want {
				assert.Contains(t, args, w)
			}
			if tt.chunking != nil {
				assert.NotContains(t, args, "-b:v:", "no average bitrate under capped CRF")
			}
		})
	}
}

// encodeChunked runs a chunked encode the way the chunk tasks and the
// stitch task do, each part in its own directory: every chunk (planned,
// run, collected and verified against its own range), the whole-input
// part, then Stitch into out, and checks the result as an encode's
// output is checked (Collect, Verify, and CheckSeams when segmented). It
// returns the stitched command and its outputs.
func encodeChunked(t *testing.T, spec encodespec.Spec, input string, chunks []Chunk, out string) (Command, []Output) {
	t.Helper()
	ctx := context.Background()
	ffmpegBin, ffprobeBin := binaries(t)
	in := probeClip(t, input)
	parts := encodeChunkParts(t, spec, input, chunks)
	whole := wholePart(t, spec, input)
	cmd, err := Stitch(ctx, ffmpegBin, out, in, chunks, parts, whole)
	require.NoError(t, err)
	stitched, err := Collect(cmd)
	require.NoError(t, err)
	require.NoError(t, Verify(ctx, ffprobeBin, cmd, stitched, in))
	if spec.Packaging.Segmented() {
		require.NoError(t, CheckSeams(cmd, in))
	}
	return cmd, stitched
}

// videoFrames counts the frames of the first video stream of file (a
// media file, playlist or MPD) by decoding it: one count per program
// ffprobe lists.
func videoFrames(t *testing.T, file string) []string {
	t.Helper()
	_, ffprobeBin := binaries(t)
	b, err := exec.Command(ffprobeBin, "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", file).Output()
	require.NoError(t, err)
	counts := strings.Fields(string(b))
	require.NotEmpty(t, counts, "ffprobe counted no video frames in %s", file)
	return counts
}

// TestChunkedEncodeStitches encodes a 30 s clip in five chunks and checks
// the stitched ladder as a player would read it.
func TestChunkedEncodeStitches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ffmpegBin, ffprobeBin := binaries(t)
	input := makeClip(t, clip{width: 640, height: 360, seconds: 30, audio: true})
	in := probeClip(t, input)
	spec := chunkedSpec()

	keys, err := Keyframes(ctx, ffprobeBin, input, in)
	require.NoError(t, err)
	require.NotEmpty(t, keys)
	assert.InDelta(t, 0, keys[0], 1e-6, "the first keyframe is at the input's start")
	chunks, err := PlanChunks(in.DurationSeconds, keys, spec.SegmentSeconds, 5)
	require.NoError(t, err)
	require.Len(t, chunks, 5)

	out := filepath.Join(t.TempDir(), "stitched")
	cmd, _ := encodeChunked(t, spec, input, chunks, out)

	// Segment numbering runs on from 0 without a gap in every rendition.
	for _, r := range []string{"360p", "240p"} {
		pl, err := parseM3U8([]byte(readFile(t, out, r+"/index.m3u8")))
		require.NoError(t, err)
		require.Len(t, pl.segments, 15, "30 s in 2 s segments")
		for i, s := range pl.segments {
			require.Equal(t, segmentName(i), s.uri)
		}
		// Every frame decodes, and there are as many as the input has.
		decoded, err := exec.CommandContext(ctx, ffmpegBin, "-v", "error", "-xerror", "-i", filepath.Join(out, r, "index.m3u8"), "-f", "null", "-").CombinedOutput()
		require.NoError(t, err, "%s", decoded)
		require.Empty(t, strings.TrimSpace(string(decoded)))
		// One count per program the HLS demuxer lists, each the same stream.
		for _, n := range videoFrames(t, filepath.Join(out, r, "index.m3u8")) {
			assert.Equal(t, "750", n, "rendition %s decodes the input's 30 s × 25 frames", r)
		}
	}
	// A segment out of place is a seam CheckSeams sees: swap two of one
	// rendition's segments, as a stitch of chunks in the wrong order would.
	a, b := filepath.Join(out, "240p", segmentName(10)), filepath.Join(out, "240p", segmentName(11))
	require.NoError(t, os.Rename(a, a+".tmp"))
	require.NoError(t, os.Rename(b, a))
	require.NoError(t, os.Rename(a+".tmp", b))
	err = CheckSeams(cmd, in)
	require.ErrorContains(t, err, "rendition 240p: 240p/seg_00010.m4s starts at decode time")
	require.NotContains(t, err.Error(), "rendition 360p")

	master := readFile(t, out, "master.m3u8")
	assert.Contains(t, master, "AVERAGE-BANDWIDTH=")
	assert.Contains(t, master, `GROUP-ID="audio"`)
	// The audio was encoded once, over the whole input (AAC's priming
	// and padding add a few milliseconds).
	audio, err := parseM3U8([]byte(readFile(t, out, "audio/index.m3u8")))
	require.NoError(t, err)
	var seconds float64
	for _, s := range audio.segments {
		seconds += s.duration
	}
	assert.InDelta(t, 30, seconds, 0.05)
}

// TestStitchRefusesChunksThatDoNotJoin checks that Stitch refuses parts
// that would not make one stream: a chunk whose segments do not follow on
// and a chunk encoded with other settings.
func TestStitchRefusesChunksThatDoNotJoin(t *testing.T) {
	t.Parallel()
	ffmpegBin, _ := binaries(t)
	input := makeClip(t, clip{width: 320, height: 180, seconds: 12, audio: true})
	in := probeClip(t, input)
	spec := chunkedSpec()
	spec.Thumbnails = nil
	spec.Renditions = spec.Renditions[1:]
	chunks, err := PlanChunks(in.DurationSeconds, nil, 2, 4)
	require.NoError(t, err)
	require.Len(t, chunks, 3)

	t.Run("a missing chunk or a misnumbered one", func(t *testing.T) {
		parts := encodeChunkParts(t, spec, input, chunks)
		whole := wholePart(t, spec, input)
		_, err := Stitch(context.Background(), ffmpegBin, filepath.Join(t.TempDir(), "out"), in, []Chunk{chunks[0], chunks[2]}, []Command{parts[0], parts[2]}, whole)
		require.ErrorContains(t, err, "chunk 2 runs from 8 s to 12 s, but the chunks before it end at 4 s")
		misnumbered := slices.Clone(chunks)
		misnumbered[1].FirstSegment++
		_, err = Stitch(context.Background(), ffmpegBin, filepath.Join(t.TempDir(), "out"), in, misnumbered, parts, whole)
		require.ErrorContains(t, err, "chunk 0 wrote segments 0 to 1, but chunk 1 starts at segment 3")
		// Nothing moved: the parts can be stitched once the plan is right.
		_, err = Stitch(context.Background(), ffmpegBin, filepath.Join(t.TempDir(), "out"), in, chunks, parts, whole)
		require.NoError(t, err)
	})
	t.Run("a chunk encoded with other settings", func(t *testing.T) {
		parts := encodeChunkParts(t, spec, input, chunks[:2])
		other := spec.Clone()
		other.Renditions[0].Profile = "baseline"
		last := encodeChunkParts(t, other, input, chunks[2:])
		whole := wholePart(t, spec, input)
		_, err := Stitch(context.Background(), ffmpegBin, filepath.Join(t.TempDir(), "out"), in, chunks, append(parts, last...), whole)
		require.ErrorContains(t, err, "sample description differs")
	})
}

// encodeChunkParts plans and runs chunks of input, each in its own
// directory, and checks each as a chunk task would before uploading it:
// progress to 1, Collect, Verify against its own range, no audio and no
// master playlist.
func encodeChunkParts(t *testing.T, spec encodespec.Spec, input string, chunks []Chunk) []Command {
	t.Helper()
	ctx := context.Background()
	ffmpegBin, ffprobeBin := binaries(t)
	in := probeClip(t, input)
	var parts []Command
	for _, c := range chunks {
		cmd, err := Plan(spec, in, input, filepath.Join(t.TempDir(), "chunk"+strconv.Itoa(c.Index)), chooseCPU(t, spec), WithChunk(c))
		require.NoError(t, err)
		var progress []float64
		require.NoError(t, Run(ctx, ffmpegBin, cmd, c.Seconds(), func(f float64) { progress = append(progress, f) }), "chunk %d", c.Index)
		requireProgress(t, progress)
		outputs, err := Collect(cmd)
		require.NoError(t, err)
		part := in
		part.DurationSeconds = c.Seconds()
		require.NoError(t, Verify(ctx, ffprobeBin, cmd, outputs, part), "chunk %d", c.Index)
		for _, o := range outputs {
			require.NotEqual(t, KindAudio, o.Kind, "chunk %d encodes no audio", c.Index)
			require.NotEqual(t, masterPlaylist, o.Name)
		}
		parts = append(parts, cmd)
	}
	return parts
}

// wholePart plans, runs and verifies the whole-input part of a chunked
// encode; it encodes no video rendition.
func wholePart(t *testing.T, spec encodespec.Spec, input string) Command {
	t.Helper()
	ctx := context.Background()
	ffmpegBin, ffprobeBin := binaries(t)
	in := probeClip(t, input)
	cmd, err := Plan(spec, in, input, filepath.Join(t.TempDir(), "whole"), chooseCPU(t, spec), WithWholeInput())
	require.NoError(t, err)
	require.NoError(t, Run(ctx, ffmpegBin, cmd, in.DurationSeconds, nil))
	outputs, err := Collect(cmd)
	require.NoError(t, err)
	require.NoError(t, Verify(ctx, ffprobeBin, cmd, outputs, in))
	for _, o := range outputs {
		require.NotEqual(t, KindVideo, o.Kind, "the whole-input part encodes no video rendition")
	}
	return cmd
}

// TestChunkReadsOnlyItsRange encodes one chunk of a 60 s input served over
// HTTP, as a chunk task reads its presigned input URL: FFmpeg reads the
// index and its range with range requests, far less than the file, and a
// failing read does not put the URL's signature in the error.
func TestChunkReadsOnlyItsRange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ffmpegBin, ffprobeBin := binaries(t)
	input := makeClip(t, clip{width: 640, height: 360, seconds: 60, audio: true})
	in := probeClip(t, input)
	data, err := os.ReadFile(input)
	require.NoError(t, err)
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("X-Amz-Signature") != "s3cr3t" {
			http.Error(w, "SignatureDoesNotMatch", http.StatusForbidden)
			return
		}
		http.ServeContent(countingWriter{w, &served}, r, "in.mp4", time.Time{}, bytes.NewReader(data))
	}))
	defer srv.Close()

	spec := chunkedSpec()
	c := Chunk{Index: 4, Start: 40, End: 50, FirstSegment: 20}
	cmd, err := Plan(spec, in, input, filepath.Join(t.TempDir(), "chunk"), chooseCPU(t, spec),
		WithChunk(c), WithPresignedInput(srv.URL+"/in.mp4?X-Amz-Signature=s3cr3t"))
	require.NoError(t, err)
	// The planned command as planned, but with FFmpeg's debug log, whose
	// closing statistics count the bytes it read from the input (what the
	// server sends can run ahead of that into socket buffers).
	debug := slices.Clone(cmd.Args)
	debug[slices.Index(debug, "warning")] = "debug"
	for _, d := range cmd.Dirs {
		require.NoError(t, os.MkdirAll(filepath.Join(cmd.OutDir, d), 0o755))
	}
	run := exec.CommandContext(ctx, ffmpegBin, debug...)
	run.Dir = cmd.OutDir
	log, err := run.CombinedOutput()
	require.NoError(t, err, "%s", log)
	m := regexp.MustCompile(`Statistics: (\d+) bytes read`).FindSubmatch(log)
	require.NotNil(t, m, "FFmpeg's input statistics")
	read, err := strconv.ParseInt(string(m[1]), 10, 64)
	require.NoError(t, err)
	outputs, err := Collect(cmd)
	require.NoError(t, err)
	part := in
	part.DurationSeconds = c.Seconds()
	require.NoError(t, Verify(ctx, ffprobeBin, cmd, outputs, part))
	t.Logf("FFmpeg read %d of %d bytes; the server sent %d", read, len(data), served.Load())
	require.Positive(t, read)
	require.Less(t, read, int64(len(data))/4, "a 10 s chunk of 60 s reads a fraction of the file")

	bad, err := Plan(spec, in, input, filepath.Join(t.TempDir(), "bad"), chooseCPU(t, spec),
		WithChunk(c), WithPresignedInput(srv.URL+"/in.mp4?X-Amz-Signature=wrong&X-Amz-Security-Token="+strings.Repeat("T0k3n", 400)))
	require.NoError(t, err)
	err = Run(ctx, ffmpegBin, bad, c.Seconds(), nil)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "X-Amz", "a 2 KB URL, cut by the stderr tail, still leaves nothing of its query")
	require.NotContains(t, err.Error(), "T0k3n")

	for _, u := range []string{"file:///etc/passwd", "ftp://storage/in.mp4", "http://user:pw@storage/in.mp4", "https:///in.mp4"} {
		_, err := Plan(spec, in, input, t.TempDir(), cpuEncoders, WithChunk(c), WithPresignedInput(u))
		require.ErrorContains(t, err, "input URL", u)
		require.NotContains(t, err.Error(), "storage", "the URL stays out of the error")
	}
}

// countingWriter counts the body bytes a handler writes.
type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n.Add(int64(n))
	return n, err
}

// TestChunkedMP4Joins encodes a 12 s clip as MP4 in three chunks and joins
// them: each rendition is one faststart MP4 with every input frame and the
// whole input's audio, and no intermediate is left among the outputs.
func TestChunkedMP4Joins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ffmpegBin, ffprobeBin := binaries(t)
	input := makeClip(t, clip{width: 640, height: 360, seconds: 12, audio: true})
	in := probeClip(t, input)
	spec := chunkedSpec()
	spec.Packaging, spec.SegmentSeconds = encodespec.PackagingMP4, 0
	spec.Thumbnails = nil
	require.Empty(t, Chunkable(spec))
	chunks, err := PlanChunks(in.DurationSeconds, nil, ChunkGrid(spec), 4)
	require.NoError(t, err)
	require.Len(t, chunks, 3)

	out := filepath.Join(t.TempDir(), "joined")
	_, outputs := encodeChunked(t, spec, input, chunks, out)
	var names []string
	for _, o := range outputs {
		names = append(names, o.Name)
	}
	require.ElementsMatch(t, []string{"360p.mp4", "240p.mp4"}, names)
	for _, name := range names {
		file := filepath.Join(out, name)
		assert.Equal(t, []string{"300"}, videoFrames(t, file), "%s holds the input's 12 s × 25 frames", name)
		streams, err := exec.CommandContext(ctx, ffprobeBin, "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", file).Output()
		require.NoError(t, err)
		assert.Equal(t, []string{"video", "audio"}, strings.Fields(string(streams)))
		decoded, err := exec.CommandContext(ctx, ffmpegBin, "-v", "error", "-xerror", "-i", file, "-f", "null", "-").CombinedOutput()
		require.NoError(t, err, "%s", decoded)
		head, err := os.ReadFile(file)
		require.NoError(t, err)
		require.Less(t, bytes.Index(head, []byte("moov")), bytes.Index(head, []byte("mdat")), "%s is faststart", name)
	}
}

// TestChunkedEncodeAtNTSCRate chunks a 29.97 fps input, whose chunk
// boundaries fall between frames: every frame still lands in exactly one
// chunk and the seams hold.
func TestChunkedEncodeAtNTSCRate(t *testing.T) {
	t.Parallel()
	input := makeClip(t, clip{width: 320, height: 180, seconds: 20, audio: true, extra: []string{"-r", "30000/1001"}})
	in := probeClip(t, input)
	require.InDelta(t, 29.97, in.FrameRate, 0.01)
	spec := chunkedSpec()
	spec.Renditions = spec.Renditions[1:]
	spec.Thumbnails = nil
	chunks, err := PlanChunks(in.DurationSeconds, nil, spec.SegmentSeconds, 6)
	require.NoError(t, err)
	require.Len(t, chunks, 3)

	out := filepath.Join(t.TempDir(), "stitched")
	encodeChunked(t, spec, input, chunks, out)
	want := videoFrames(t, input)[0]
	for _, n := range videoFrames(t, filepath.Join(out, "240p", "index.m3u8")) {
		assert.Equal(t, want, n, "the stitched rendition holds every input frame")
	}
}

// TestChunkedDASHAndCMAF encodes a 12 s clip in three chunks as DASH and
// as CMAF: the stitched MPD (and for CMAF the HLS playlists) cover every
// segment of every chunk, FFmpeg's own DASH reader decodes every frame,
// and the seams hold.
func TestChunkedDASHAndCMAF(t *testing.T) {
	t.Parallel()
	for _, packaging := range []encodespec.Packaging{encodespec.PackagingDASH, encodespec.PackagingCMAF} {
		t.Run(packaging.String(), func(t *testing.T) {
			ctx := context.Background()
			ffmpegBin, _ := binaries(t)
			input := makeClip(t, clip{width: 640, height: 360, seconds: 12, audio: true})
			in := probeClip(t, input)
			spec := chunkedSpec()
			spec.Packaging, spec.Thumbnails = packaging, nil
			require.Empty(t, Chunkable(spec))
			chunks, err := PlanChunks(in.DurationSeconds, nil, ChunkGrid(spec), 4)
			require.NoError(t, err)
			require.Len(t, chunks, 3)

			out := filepath.Join(t.TempDir(), "stitched")
			encodeChunked(t, spec, input, chunks, out)

			mpd := readFile(t, out, "manifest.mpd")
			tracks, err := parseMPD([]byte(mpd))
			require.NoError(t, err)
			require.Len(t, tracks, 3, "two video representations and the audio")
			for _, tr := range tracks[:2] {
				require.Len(t, tr.segments, 6, "12 s in 2 s segments")
				require.Equal(t, "seg_"+tr.id+"_00001.m4s", tr.segments[0])
			}
			assert.Contains(t, mpd, `codecs="avc1.`)
			assert.Contains(t, mpd, `contentType="audio"`)
			_, hasMaster := readOptional(out, "master.m3u8")
			assert.Equal(t, packaging == encodespec.PackagingCMAF, hasMaster)
			_, hasMedia := readOptional(out, "media_0.m3u8")
			assert.Equal(t, packaging == encodespec.PackagingCMAF, hasMedia, "the DASH layout's working playlists stay only for CMAF")

			decoded, err := exec.CommandContext(ctx, ffmpegBin, "-v", "error", "-xerror", "-i", filepath.Join(out, "manifest.mpd"),
				"-map", "0:v:0", "-f", "null", "-").CombinedOutput()
			require.NoError(t, err, "%s", decoded)
			assert.Equal(t, "300", videoFrames(t, filepath.Join(out, "manifest.mpd"))[0])
		})
	}
}

// readOptional reads a file that may not exist.
func readOptional(dir, name string) ([]byte, bool) {
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
	return b, err == nil
}

// TestChunkOfACorruptRangeFails encodes a chunk whose range of the input
// is damaged (zeros where the media was, the index intact): the chunk
// fails as the input's fault (no retry can help), not with a short output
// that would stitch into a gap.
func TestChunkOfACorruptRangeFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ffmpegBin, _ := binaries(t)
	input := makeClip(t, clip{width: 320, height: 180, seconds: 24, audio: true})
	in := probeClip(t, input)
	data, err := os.ReadFile(input)
	require.NoError(t, err)
	// Keep the index (the moov is at the end) but overwrite the media from
	// a third of the file on with zeros.
	broken := filepath.Join(t.TempDir(), "broken.mp4")
	moov := bytes.LastIndex(data, []byte("moov")) - 4
	require.Positive(t, moov)
	corrupt := slices.Clone(data)
	clear(corrupt[len(data)/3 : moov])
	require.NoError(t, os.WriteFile(broken, corrupt, 0o644))

	spec := chunkedSpec()
	spec.Renditions, spec.Thumbnails = spec.Renditions[1:], nil
	c := Chunk{Index: 2, Start: 16, End: 24, FirstSegment: 8}
	cmd, err := Plan(spec, in, broken, filepath.Join(t.TempDir(), "chunk"), chooseCPU(t, spec), WithChunk(c))
	require.NoError(t, err)
	err = Run(ctx, ffmpegBin, cmd, c.Seconds(), nil)
	var ie *InputError
	require.ErrorAs(t, err, &ie, "a chunk over zeros fails as the input's fault, not for a retry")
	assert.Contains(t, ie.Msg, "damaged")
	assert.NotContains(t, ie.Msg, broken, "no local path in what the user sees")
}

// TestWholeInputPartWithNoWork: an input without audio, and a spec
// without images, leaves the whole-input part nothing to encode; it runs
// as a no-op and the chunks alone make the output.
func TestWholeInputPartWithNoWork(t *testing.T) {
	t.Parallel()
	input := makeClip(t, clip{width: 320, height: 180, seconds: 12})
	in := probeClip(t, input)
	require.False(t, in.HasAudio)
	spec := chunkedSpec()
	spec.Renditions, spec.Thumbnails = spec.Renditions[1:], nil
	chunks, err := PlanChunks(in.DurationSeconds, nil, spec.SegmentSeconds, 4)
	require.NoError(t, err)
	_, outputs := encodeChunked(t, spec, input, chunks, filepath.Join(t.TempDir(), "out"))
	var names []string
	for _, o := range outputs {
		if o.Kind != KindVideo || !strings.HasSuffix(o.Name, ".m4s") {
			names = append(names, o.Name)
		}
	}
	assert.ElementsMatch(t, []string{"240p/index.m3u8", "240p/init.mp4", "master.m3u8"}, names)
}

// TestChunkBoundariesOnEveryRenditionsFrames: a 59.94 fps input with a
// rendition capped to 29.97 fps is cut on every other input frame, a
// frame of both; a cap whose frames never meet the input's is refused.
func TestChunkBoundariesOnEveryRenditionsFrames(t *testing.T) {
	t.Parallel()
	in := MediaInfo{DurationSeconds: 60, Width: 1280, Height: 720, HasVideo: true, FrameRate: 60000.0 / 1001, Container: "mov"}
	spec := chunkedSpec()
	spec.Audio, spec.Thumbnails = nil, nil
	spec.Renditions[1].MaxFPS = 30000.0 / 1001
	c := Chunk{Index: 1, Start: 18, End: 36, FirstSegment: 9}
	cmd, err := Plan(spec, in, "in.mp4", t.TempDir(), cpuEncoders, WithChunk(c))
	require.NoError(t, err)
	// 18 s × 30000/1001 = 539.46: frame 540 of the capped grid (18.018 s),
	// 1080 of the input's; 36 s: frame 1079 of the capped grid (36.002633 s).
	assert.Equal(t, "18.018", argValue(cmd.Args, "-ss"))
	assert.Equal(t, "17.984633", argValue(cmd.Args, "-t"))
	assert.Equal(t, "18.018", argValue(cmd.Args, "-output_ts_offset"))

	spec.Renditions[1].MaxFPS = 25
	_, err = Plan(spec, in, "in.mp4", t.TempDir(), cpuEncoders, WithChunk(c))
	require.ErrorContains(t, err, "between two frames")
}

// TestWholeInputPartOfAConditionedInput: an interlaced input is
// deinterlaced for the renditions, but a whole-input part without images
// reads no video at all, so its graph has no dangling video chain.
func TestWholeInputPartOfAConditionedInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ffmpegBin, ffprobeBin := binaries(t)
	// conditioningInput's "-t 2" applies to the tone; the output's own
	// "-t 2" ends the pattern.
	input := conditioningInput(t, "testsrc2=size=320x240:rate=50", "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
		"-vf", "tinterlace=mode=interleave_top,setfield=tff", "-c:a", "aac", "-t", "2")
	in, err := Probe(ctx, ffprobeBin, input)
	require.NoError(t, err)
	require.True(t, in.HasAudio)
	spec := chunkedSpec()
	spec.Renditions, spec.Thumbnails = spec.Renditions[1:], nil
	spec.Conditioning = &encodespec.Conditioning{Deinterlace: "on", ToneMap: "auto", FrameRate: "auto"}
	whole, err := Plan(spec, in, input, filepath.Join(t.TempDir(), "whole"), chooseCPU(t, spec), WithWholeInput())
	require.NoError(t, err)
	require.NotContains(t, strings.Join(whole.Args, " "), "bwdif", "the deinterlacer has nothing to feed")
	require.NoError(t, Run(ctx, ffmpegBin, whole, in.DurationSeconds, nil))
	outputs, err := Collect(whole)
	require.NoError(t, err)
	require.NoError(t, Verify(ctx, ffprobeBin, whole, outputs, in))
	chunk, err := Plan(spec, in, input, filepath.Join(t.TempDir(), "chunk"), chooseCPU(t, spec), WithChunk(Chunk{End: in.DurationSeconds}))
	require.NoError(t, err)
	require.Contains(t, strings.Join(chunk.Args, " "), "bwdif", "the chunk deinterlaces")
}
