package ffmpeg

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"
)

func TestProbe(t *testing.T) {
	t.Parallel()
	ffmpegBin, ffprobeBin := binaries(t)
	dir := t.TempDir()
	input := makeClip(t, clip{width: 640, height: 360, seconds: 3, audio: true})
	rotated := filepath.Join(dir, "rotated.mp4")
	out, err := exec.Command(ffmpegBin, "-v", "error", "-i", input, "-c", "copy", "-metadata:s:v:0", "rotate=90", rotated).CombinedOutput()
	require.NoError(t, err, "%s", out)
	silent := makeClip(t, clip{width: 320, height: 240, seconds: 2})

	tests := map[string]struct {
		file string
		want MediaInfo
	}{
		"video with audio": {input, MediaInfo{DurationSeconds: 3, Width: 640, Height: 360, VideoCodec: "h264",
			FrameRate: 25, HasVideo: true, HasAudio: true, AudioChannels: 1, AudioStreams: []AudioStream{{Channels: 1, Language: "und", Default: true}}, FieldOrder: "progressive", Container: "mov"}},
		"rotation swaps the displayed size": {rotated, MediaInfo{DurationSeconds: 3, Width: 360, Height: 640, VideoCodec: "h264",
			FrameRate: 25, HasVideo: true, HasAudio: true, AudioChannels: 1, AudioStreams: []AudioStream{{Channels: 1, Language: "und", Default: true}}, Rotation: 90, FieldOrder: "progressive", Container: "mov"}},
		"no audio": {silent, MediaInfo{DurationSeconds: 2, Width: 320, Height: 240, VideoCodec: "h264",
			FrameRate: 25, HasVideo: true, FieldOrder: "progressive", Container: "mov"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := Probe(context.Background(), ffprobeBin, tt.file)
			require.NoError(t, err)
			require.Empty(t, cmp.Diff(tt.want, got, cmpopts.EquateApprox(0, 0.05)))
		})
	}
}

func TestProbeRejectsBadInput(t *testing.T) {
	t.Parallel()
	ffmpegBin, ffprobeBin := binaries(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o644))
		return p
	}
	// truncate keeps the first half of a file.
	truncate := func(src, name string) string {
		data, err := os.ReadFile(src)
		require.NoError(t, err)
		return write(name, data[:len(data)/2])
	}
	ffmpeg := func(args ...string) {
		out, err := exec.Command(ffmpegBin, append([]string{"-nostdin", "-v", "error", "-y"}, args...)...).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	plain := makeClip(t, clip{width: 320, height: 180, seconds: 3, audio: true})
	faststart := makeClip(t, clip{width: 320, height: 180, seconds: 3, audio: true, extra: []string{"-movflags", "+faststart"}})
	longFaststart := makeClip(t, clip{width: 320, height: 180, seconds: 12, extra: []string{"-movflags", "+faststart"}})
	audioOnly := filepath.Join(dir, "audio.m4a")
	ffmpeg("-f", "lavfi", "-i", "sine=duration=2", "-c:a", "aac", audioOnly)
	image := filepath.Join(dir, "still.png")
	ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x64", "-frames:v", "1", image)

	tests := map[string]struct {
		file    string
		wantMsg string
	}{
		"text renamed to mp4":                    {write("notes.mp4", []byte("these are my holiday notes\n")), "MP4 index"},
		"zero-length file":                       {write("empty.mp4", nil), "empty"},
		"truncated mp4, index at the end":        {truncate(plain, "cut.mp4"), "MP4 index"},
		"truncated mp4, index at the start":      {truncate(faststart, "cut_faststart.mp4"), "truncated"},
		"truncated long mp4, header claims more": {truncate(longFaststart, "cut_long.mp4"), "truncated"},
		"random bytes":                           {write("noise.bin", []byte(strings.Repeat("\x01\x02garbage\xff", 500))), "not a video"},
		"audio only":                             {audioOnly, "only audio"},
		"still image":                            {image, "still image"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := Probe(context.Background(), ffprobeBin, tt.file)
			var ie *InputError
			require.ErrorAs(t, err, &ie)
			require.ErrorIs(t, err, ErrInput)
			require.Contains(t, ie.Msg, tt.wantMsg)
			require.NotContains(t, ie.Msg, "\n")
			require.NotContains(t, ie.Msg, dir, "the message must not leak local paths")
			require.NotContains(t, ie.Msg, clipDir, "the message must not leak local paths")
		})
	}
}

func TestProbeMissingFileIsNotAnInputError(t *testing.T) {
	t.Parallel()
	_, ffprobeBin := binaries(t)
	_, err := Probe(context.Background(), ffprobeBin, filepath.Join(t.TempDir(), "nope.mp4"))
	require.Error(t, err)
	require.False(t, errors.Is(err, ErrInput), "a missing download is the encoder's problem: %v", err)
	require.ErrorIs(t, err, os.ErrNotExist)
}
