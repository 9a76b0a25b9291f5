package ffmpeg

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// subtitledInput is a 4 s Matroska file with video, audio and two SubRip
// streams: English (titled, default) and French (forced).
func subtitledInput(t *testing.T) string {
	t.Helper()
	ffmpegBin, _ := binaries(t)
	dir := t.TempDir()
	srt := func(name, first, second string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte("1\n00:00:00,500 --> 00:00:01,500\n"+first+"\n\n2\n00:00:02,000 --> 00:00:03,000\n"+second+"\n"), 0o644))
		return p
	}
	out := filepath.Join(dir, "in.mkv")
	b, err := exec.Command(ffmpegBin, "-nostdin", "-v", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=4", "-f", "lavfi", "-i", "sine=duration=4",
		"-i", srt("en.srt", "Hello there", "Second cue"), "-i", srt("fr.srt", "Bonjour", "Deuxième"),
		"-map", "0:v", "-map", "1:a", "-map", "2", "-map", "3",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-c:s", "srt",
		"-metadata:s:s:0", "language=eng", "-metadata:s:s:0", "title=English", "-disposition:s:0", "default",
		"-metadata:s:s:1", "language=fra", "-disposition:s:1", "forced", out).CombinedOutput()
	require.NoError(t, err, "%s", b)
	return out
}

// TestSubtitles converts the input's text subtitle streams to WebVTT for
// every packaging, lists them in the HLS master playlist and the MPD, and
// keeps their cues.
func TestSubtitles(t *testing.T) {
	t.Parallel()
	input := subtitledInput(t)
	for _, packaging := range []encodespec.Packaging{encodespec.PackagingMP4, encodespec.PackagingHLS, encodespec.PackagingDASH, encodespec.PackagingCMAF} {
		t.Run(string(packaging), func(t *testing.T) {
			t.Parallel()
			spec := smallSpec(packaging)
			if packaging.Segmented() {
				spec.SegmentSeconds = 1
			}
			res := encode(t, spec, input)

			byName := map[string]Output{}
			for _, o := range res.outputs {
				byName[o.Name] = o
			}
			en, fr := byName["subtitles/en.vtt"], byName["subtitles/fr.vtt"]
			require.Equal(t, KindSubtitles, en.Kind, "outputs: %v", byName)
			require.Equal(t, KindSubtitles, fr.Kind)
			assert.Equal(t, map[string]string{apiv1.SubtitleAttrLanguage: "en", apiv1.SubtitleAttrTitle: "English", apiv1.SubtitleAttrSourceCodec: "subrip",
				apiv1.SubtitleAttrDefault: "true", apiv1.SubtitleAttrForced: "false"}, en.Attributes)
			assert.Equal(t, "true", fr.Attributes[apiv1.SubtitleAttrForced])
			vtt := readFile(t, res.cmd.OutDir, "subtitles/en.vtt")
			require.True(t, strings.HasPrefix(vtt, "WEBVTT"), vtt)
			assert.Contains(t, vtt, "Hello there")
			assert.Contains(t, vtt, "Second cue")
			assert.Contains(t, readFile(t, res.cmd.OutDir, "subtitles/fr.vtt"), "Deuxième")

			if packaging.HLS() {
				master := readFile(t, res.cmd.OutDir, "master.m3u8")
				assert.Contains(t, master, `#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,URI="subtitles/en.m3u8"`)
				assert.Contains(t, master, `#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="fr",LANGUAGE="fr",DEFAULT=NO,AUTOSELECT=YES,FORCED=YES,URI="subtitles/fr.m3u8"`)
				assert.Equal(t, 2, strings.Count(master, `SUBTITLES="subs"`), "every variant names the group")
				pl, err := parseM3U8([]byte(readFile(t, res.cmd.OutDir, "subtitles/en.m3u8")))
				require.NoError(t, err)
				require.Len(t, pl.segments, 1)
				assert.Equal(t, "en.vtt", pl.segments[0].uri)
				assert.InDelta(t, res.in.DurationSeconds, pl.segments[0].duration, 0.01)
			}
			if packaging.DASH() {
				mpd := readFile(t, res.cmd.OutDir, "manifest.mpd")
				tracks, err := parseMPD([]byte(mpd))
				require.NoError(t, err)
				var files []string
				for _, tr := range tracks {
					if tr.file != "" {
						files = append(files, tr.file)
					}
				}
				assert.Equal(t, []string{"subtitles/en.vtt", "subtitles/fr.vtt"}, files)
				assert.Contains(t, mpd, `contentType="text" mimeType="text/vtt" lang="en"`)
			}
			if packaging == encodespec.PackagingMP4 {
				assert.NotContains(t, byName, "subtitles/en.m3u8", "no playlists without HLS")
			}
		})
	}
}

// A player reads the cues through the subtitle playlist (FFmpeg 5.1's HLS
// demuxer does not follow a master's subtitle groups, so the media
// playlist is read directly).
func TestSubtitlesPlayable(t *testing.T) {
	t.Parallel()
	spec := smallSpec(encodespec.PackagingCMAF)
	spec.SegmentSeconds = 1
	res := encode(t, spec, subtitledInput(t))
	ffmpegBin, _ := binaries(t)
	b, err := exec.Command(ffmpegBin, "-v", "error", "-i", filepath.Join(res.cmd.OutDir, "subtitles", "fr.m3u8"),
		"-f", "webvtt", "-").CombinedOutput()
	require.NoError(t, err, "%s", b)
	assert.Contains(t, string(b), "Bonjour")
	assert.Contains(t, string(b), "Deuxième")
}

// Verify refuses a broken subtitle track.
func TestVerifyCatchesBadSubtitles(t *testing.T) {
	t.Parallel()
	spec := smallSpec(encodespec.PackagingHLS)
	spec.SegmentSeconds = 1
	clean := encode(t, spec, subtitledInput(t))
	for name, tt := range map[string]struct {
		tamper func(dir string) error
		want   string
	}{
		"not WebVTT": {func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "subtitles", "en.vtt"), []byte("1\n00:00:00,500 --> 00:00:01,500\nSRT\n"), 0o644)
		}, "subtitles subtitles/en.vtt: not a WebVTT file"},
		"cue after the end": {func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "subtitles", "fr.vtt"), []byte("WEBVTT\n\n00:09.000 --> 00:10.000\nLate\n"), 0o644)
		}, `cue "00:09.000 --> 00:10.000" ends after the input`},
		"track deleted": {func(dir string) error { return os.Remove(filepath.Join(dir, "subtitles", "fr.vtt")) },
			"subtitles/fr.m3u8 references subtitles/fr.vtt, which is not among the outputs"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, ffprobeBin := binaries(t)
			cmd := clean.cmd
			cmd.OutDir = filepath.Join(t.TempDir(), "out")
			require.NoError(t, os.CopyFS(cmd.OutDir, os.DirFS(clean.cmd.OutDir)))
			require.NoError(t, tt.tamper(cmd.OutDir))
			outputs, err := Collect(cmd)
			require.NoError(t, err)
			require.ErrorContains(t, Verify(t.Context(), ffprobeBin, cmd, outputs, clean.in), tt.want)
		})
	}
}

// Stream language tags become BCP 47 base languages; a tag that names no
// language ("und", unknown codes, none) stays "und" rather than a guess.
func TestSubtitleLanguage(t *testing.T) {
	t.Parallel()
	for tag, want := range map[string]string{
		"eng": "en", "fra": "fr", "deu": "de", "en": "en", "pt-BR": "pt", "zh-Hant": "zh",
		"und": "und", "": "und", "xx": "und", "not a language": "und",
	} {
		assert.Equal(t, want, streamLanguage(tag), "tag %q", tag)
	}
}
