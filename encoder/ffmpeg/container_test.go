package ffmpeg

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// secretWidth and secretHeight are the frame size of the other tenant's
// video: no test clip has it, so an answer of this size means FFmpeg read
// the secret.
const secretWidth, secretHeight = 208, 112

// tenant holds another tenant's files on the encoder's disk (in `mpegflow
// dev`, or wherever encoders share a disk): the same short video as MP4, as
// MPEG-TS and as a DASH presentation. None may ever be read for a job.
type tenant struct {
	dir  string
	mp4  string
	ts   []byte
	dash string // the presentation's manifest
}

// copyTo gives a test its own copy of the tenant's files, so the files a
// parallel test's FFmpeg opens are never counted against another.
func (tn tenant) copyTo(t *testing.T) tenant {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(tn.dir)
	require.NoError(t, err)
	for _, e := range entries {
		require.NoError(t, os.WriteFile(filepath.Join(dir, e.Name()), mustRead(t, filepath.Join(tn.dir, e.Name())), 0o644))
	}
	return tenant{dir: dir, mp4: filepath.Join(dir, "secret.mp4"), ts: tn.ts, dash: filepath.Join(dir, "manifest.mpd")}
}

func newTenant(t *testing.T) tenant {
	t.Helper()
	ffmpegBin, _ := binaries(t)
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(ffmpegBin, append([]string{"-nostdin", "-hide_banner", "-v", "error", "-y"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	tn := tenant{dir: dir, mp4: filepath.Join(dir, "secret.mp4"), dash: filepath.Join(dir, "manifest.mpd")}
	run("-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=25:duration=2", secretWidth, secretHeight),
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", tn.mp4)
	run("-i", tn.mp4, "-c", "copy", "-f", "mpegts", "secret.ts")
	run("-i", tn.mp4, "-c", "copy", "-f", "dash", tn.dash)
	ts, err := os.ReadFile(filepath.Join(dir, "secret.ts"))
	require.NoError(t, err)
	tn.ts = ts
	return tn
}

// hlsReferencing is a one-segment HLS media playlist.
func hlsReferencing(segment string) string {
	return "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n" + segment + "\n#EXT-X-ENDLIST\n"
}

// TestProbeRefusesInputsThatReferToOtherFiles: each upload is a format
// whose demuxer follows references to other files, each pointing at
// another tenant's video on the same disk. Probe must refuse every one as
// an unsupported input container, without FFmpeg opening the referenced
// files (inotify sees every open) and without anything of the secret video
// in its answer.
func TestProbeRefusesInputsThatReferToOtherFiles(t *testing.T) {
	t.Parallel()
	_, ffprobeBin := binaries(t)
	tenantFiles := newTenant(t)
	png := mustRead(t, makeStill(t))

	type upload struct {
		name, content string
		// beside are files next to the upload (relative references stay in
		// its directory); they stand for the tenant's files and must not be
		// opened either.
		beside map[string][]byte
	}
	tests := map[string]func(t *testing.T, secret tenant) upload{
		"HLS playlist naming a file: segment": func(t *testing.T, secret tenant) upload {
			return upload{name: "input", content: hlsReferencing("file:" + secret.mp4)}
		},
		"HLS playlist renamed .mp4": func(t *testing.T, secret tenant) upload {
			return upload{name: "holiday.mp4", content: hlsReferencing("file:" + secret.mp4)}
		},
		"HLS playlist naming a bare path": func(t *testing.T, secret tenant) upload {
			return upload{name: "input", content: hlsReferencing(secret.mp4)}
		},
		"HLS playlist naming a subfile: URL": func(t *testing.T, secret tenant) upload {
			size := len(mustRead(t, secret.mp4))
			return upload{name: "input", content: hlsReferencing(fmt.Sprintf("subfile,,start,0,end,%d,,:%s", size, secret.mp4))}
		},
		"HLS playlist with a data: URI segment": func(t *testing.T, secret tenant) upload {
			return upload{name: "input", content: hlsReferencing("data:video/mp2t;base64," + base64.StdEncoding.EncodeToString(secret.ts))}
		},
		"DASH manifest with a file: BaseURL": func(t *testing.T, secret tenant) upload {
			mpd := string(mustRead(t, secret.dash))
			return upload{name: "input", content: strings.Replace(mpd, "<Period ", "<BaseURL>file:"+secret.dir+"/</BaseURL><Period ", 1)}
		},
		"ffconcat list": func(t *testing.T, secret tenant) upload {
			return upload{name: "input", content: "ffconcat version 1.0\nfile secret.mp4\n",
				beside: map[string][]byte{"secret.mp4": mustRead(t, secret.mp4)}}
		},
		"image sequence pattern": func(_ *testing.T, _ tenant) upload {
			return upload{name: "frame%03d.png", content: string(png),
				beside: map[string][]byte{"frame000.png": png, "frame001.png": png, "frame002.png": png}}
		},
		"SDP session description": func(_ *testing.T, _ tenant) upload {
			return upload{name: "input", content: "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=stream\r\n" +
				"c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 45678 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"}
		},
	}
	for name, makeUpload := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			secret := tenantFiles.copyTo(t)
			up := makeUpload(t, secret)
			dir := t.TempDir()
			input := filepath.Join(dir, up.name)
			require.NoError(t, os.WriteFile(input, []byte(up.content), 0o644))
			for n, b := range up.beside {
				require.NoError(t, os.WriteFile(filepath.Join(dir, n), b, 0o644))
			}
			tenantOpens, besideOpens := watchOpens(t, secret.dir), watchOpens(t, dir)

			info, err := Probe(context.Background(), ffprobeBin, input)

			require.Empty(t, tenantOpens(), "FFmpeg opened the other tenant's files")
			opened := slices.DeleteFunc(besideOpens(), func(n string) bool { return n == up.name || n == "." })
			require.Empty(t, opened, "FFmpeg opened files the upload refers to")
			require.NotEqual(t, secretWidth, info.Width, "the probe read the other tenant's video")
			var ie *InputError
			require.ErrorAs(t, err, &ie)
			require.Contains(t, ie.Msg, "unsupported input container")
			require.NotContains(t, ie.Msg, "\n")
			require.NotContains(t, ie.Msg, dir, "the message must not leak local paths")
			require.NotContains(t, ie.Msg, secret.dir, "the message must not leak local paths")
		})
	}
}

// TestProbeTreatsItsArgumentAsAPath: Probe's argument is a local path, never
// an FFmpeg URL, so "file:" and "subfile:" URLs name files that do not
// exist (a bug of the caller, not an input error) and the file they point
// at is not opened.
func TestProbeTreatsItsArgumentAsAPath(t *testing.T) {
	t.Parallel()
	_, ffprobeBin := binaries(t)
	secret := newTenant(t)
	opens := watchOpens(t, secret.dir)
	for _, arg := range []string{"file:" + secret.mp4, "subfile,,start,0,end,0,,:" + secret.mp4} {
		info, err := Probe(context.Background(), ffprobeBin, arg)
		require.ErrorIs(t, err, os.ErrNotExist, arg)
		require.NotErrorIs(t, err, ErrInput, arg)
		require.Zero(t, info.Width, arg)
	}
	require.Empty(t, opens(), "FFmpeg opened the file a URL-shaped argument names")
}

// TestRunOpensOnlyTheProbedDemuxer: even if the command were planned for a
// file that is not what the probe saw (a playlist where Probe reported
// MP4), FFmpeg opens it as MP4 with the file protocol alone: it fails on
// the input and neither follows the playlist nor writes an output.
func TestRunOpensOnlyTheProbedDemuxer(t *testing.T) {
	t.Parallel()
	ffmpegBin, _ := binaries(t)
	secret := newTenant(t)
	dir := t.TempDir()
	input := filepath.Join(dir, "input")
	require.NoError(t, os.WriteFile(input, []byte(hlsReferencing("file:"+secret.mp4)), 0o644))
	in := source(secretWidth, secretHeight)
	in.DurationSeconds = 2
	outDir := filepath.Join(dir, "out")
	cmd, err := Plan(smallSpec(encodespec.PackagingMP4), in, input, outDir, cpuEncoders)
	require.NoError(t, err)
	opens := watchOpens(t, secret.dir)

	err = Run(context.Background(), ffmpegBin, cmd, in.DurationSeconds, nil)
	require.ErrorIs(t, err, ErrInput)
	require.Empty(t, opens(), "FFmpeg opened the file the playlist names")
	entries, err := os.ReadDir(outDir)
	require.NoError(t, err)
	for _, e := range entries {
		if !e.IsDir() {
			st, err := os.Stat(filepath.Join(outDir, e.Name()))
			require.NoError(t, err)
			require.Zero(t, st.Size(), "output %s has content", e.Name())
		}
	}
}

// TestProbeAcceptsMediaContainers: the containers real libraries hold are
// detected and probed as before (and the encode opens them the same way);
// audio-only formats are still refused for lacking video, not for their
// container.
func TestProbeAcceptsMediaContainers(t *testing.T) {
	t.Parallel()
	ffmpegBin, ffprobeBin := binaries(t)
	src := makeClip(t, clip{width: 320, height: 180, seconds: 2, audio: true})
	dir := t.TempDir()
	remux := func(name string, args ...string) string {
		t.Helper()
		out := filepath.Join(dir, name)
		full := append([]string{"-nostdin", "-hide_banner", "-v", "error", "-y", "-i", src}, args...)
		b, err := exec.Command(ffmpegBin, append(full, out)...).CombinedOutput()
		require.NoError(t, err, "%s", b)
		return out
	}
	mpeg2 := []string{"-c:v", "mpeg2video", "-q:v", "5"}
	tests := map[string]struct {
		file      string
		container string
		encode    bool
	}{
		"mov":           {remux("clip.mov", "-c", "copy"), "mov", false},
		"matroska":      {remux("clip.mkv", "-c", "copy"), "matroska", true},
		"webm":          {remux("clip.webm", "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus"), "matroska", true},
		"mpeg-ts":       {remux("clip.ts", "-c", "copy"), "mpegts", true},
		"mpeg-ps":       {remux("clip.mpg", append(mpeg2, "-c:a", "mp2")...), "mpeg", false},
		"mxf":           {remux("clip.mxf", append(mpeg2, "-c:a", "pcm_s16le", "-ar", "48000")...), "mxf", true},
		"avi":           {remux("clip.avi", "-c", "copy"), "avi", false},
		"flv":           {remux("clip.flv", "-c", "copy"), "flv", false},
		"no extension":  {remux("upload", "-c", "copy", "-f", "mp4"), "mov", false},
		"ivf (VP9)":     {remux("clip.ivf", "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-an"), "ivf", false},
		"asf (WMV)":     {remux("clip.wmv", "-c:v", "wmv2", "-c:a", "wmav2"), "asf", false},
		"wav (refused)": {remux("clip.wav", "-vn"), "wav", false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			info, err := Probe(context.Background(), ffprobeBin, tt.file)
			require.Equal(t, tt.container, info.Container)
			if tt.container == "wav" {
				require.ErrorContains(t, err, "only audio")
				return
			}
			require.NoError(t, err)
			require.Equal(t, 320, info.Width)
			require.InDelta(t, 2.0, info.DurationSeconds, durationTolerance)
			if tt.encode {
				res := encode(t, smallSpec(encodespec.PackagingMP4), tt.file)
				i := slices.Index(res.cmd.Args, "-i")
				require.Equal(t, inputOptions(tt.container), res.cmd.Args[i-len(inputOptions(tt.container)):i])
			}
		})
	}
}

// makeStill returns a PNG still image.
func makeStill(t *testing.T) string {
	t.Helper()
	ffmpegBin, _ := binaries(t)
	out := filepath.Join(t.TempDir(), "still.png")
	b, err := exec.Command(ffmpegBin, "-nostdin", "-v", "error", "-f", "lavfi", "-i",
		fmt.Sprintf("testsrc2=size=%dx%d", secretWidth, secretHeight), "-frames:v", "1", out).CombinedOutput()
	require.NoError(t, err, "%s", b)
	return out
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// TestAllowedContainer: a probe handed to a task names a container inputs
// are read as, or the task refuses it; the formats that name other files
// or URLs never are.
func TestAllowedContainer(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"mov", "matroska", "mpegts", "mxf"} {
		require.True(t, AllowedContainer(name), name)
	}
	for _, name := range []string{"concat", "hls", "lavfi", "image2", "sdp", "", "mov,mp4,m4a,3gp,3g2,mj2"} {
		require.False(t, AllowedContainer(name), name)
	}
}
