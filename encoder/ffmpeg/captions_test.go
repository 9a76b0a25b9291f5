package ffmpeg

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/caption"
	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// writeCaption writes a caption file into dir and returns its path.
func writeCaption(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	return p
}

const (
	frenchSRT = "1\n00:00:00,500 --> 00:00:01,500\nUn sous-titre\n\n2\n00:00:02,000 --> 00:00:03,000\n<i>Deuxième</i> ligne\n"
	brazilVTT = "WEBVTT\n\n00:00.250 --> 00:01.250\nOlá\n\n00:02.500 --> 00:03.500\nSegunda legenda\n"
)

// TestSidecarCaptions converts a SubRip and a WebVTT caption file given
// with the job and publishes them beside the input's own subtitle streams,
// for every packaging, exactly as those are: subtitles/<language>.vtt (a
// French sidecar next to the input's French stream is fr-2), the master's
// SUBTITLES group, one-segment playlists, the MPD's text adaptation sets.
func TestSidecarCaptions(t *testing.T) {
	t.Parallel()
	ffmpegBin, _ := binaries(t)
	input := subtitledInput(t)
	in := probeClip(t, input)
	dir := t.TempDir()
	given := []Caption{
		{File: writeCaption(t, dir, "fr.srt", frenchSRT), Language: "fr", Format: caption.FormatSRT},
		{File: writeCaption(t, dir, "pt.vtt", brazilVTT), Language: "pt-br", Format: caption.FormatVTT},
	}
	converted, err := ConvertCaptions(t.Context(), ffmpegBin, given, in.DurationSeconds, t.TempDir())
	require.NoError(t, err)
	require.Len(t, converted, 2)
	assert.Equal(t, "pt-BR", converted[1].Language, "the tag in canonical form")

	for _, packaging := range []encodespec.Packaging{encodespec.PackagingMP4, encodespec.PackagingHLS, encodespec.PackagingDASH, encodespec.PackagingCMAF} {
		t.Run(string(packaging), func(t *testing.T) {
			t.Parallel()
			spec := smallSpec(packaging)
			if packaging.Segmented() {
				spec.SegmentSeconds = 1
			}
			res := encode(t, spec, input, converted...)
			byName := map[string]Output{}
			for _, o := range res.outputs {
				byName[o.Name] = o
			}
			fr, pt := byName["subtitles/fr-2.vtt"], byName["subtitles/pt-BR.vtt"]
			require.Equal(t, KindSubtitles, fr.Kind, "outputs: %v", byName)
			require.Equal(t, KindSubtitles, pt.Kind)
			assert.Equal(t, map[string]string{apiv1.SubtitleAttrLanguage: "fr", apiv1.SubtitleAttrSourceCodec: "subrip",
				apiv1.SubtitleAttrDefault: "false", apiv1.SubtitleAttrForced: "false", apiv1.SubtitleAttrSource: apiv1.SubtitleSourceSidecar}, fr.Attributes)
			assert.Equal(t, "webvtt", pt.Attributes[apiv1.SubtitleAttrSourceCodec])
			assert.Empty(t, byName["subtitles/fr.vtt"].Attributes[apiv1.SubtitleAttrSource], "the input's own stream is not a sidecar")
			frVTT := readFile(t, res.cmd.OutDir, "subtitles/fr-2.vtt")
			require.True(t, strings.HasPrefix(frVTT, "WEBVTT"), frVTT)
			assert.Contains(t, frVTT, "00:00.500 --> 00:01.500\nUn sous-titre")
			assert.Contains(t, frVTT, "Deuxième")
			assert.Contains(t, readFile(t, res.cmd.OutDir, "subtitles/pt-BR.vtt"), "00:02.500 --> 00:03.500\nSegunda legenda")

			if packaging.HLS() {
				master := readFile(t, res.cmd.OutDir, "master.m3u8")
				assert.Contains(t, master, `#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="fr-2",LANGUAGE="fr",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI="subtitles/fr-2.m3u8"`)
				assert.Contains(t, master, `#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="pt-BR",LANGUAGE="pt-BR",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI="subtitles/pt-BR.m3u8"`)
				assert.Equal(t, 4, strings.Count(master, "TYPE=SUBTITLES"))
				pl, err := parseM3U8([]byte(readFile(t, res.cmd.OutDir, "subtitles/pt-BR.m3u8")))
				require.NoError(t, err)
				require.Len(t, pl.segments, 1)
				assert.Equal(t, "pt-BR.vtt", pl.segments[0].uri)
			}
			if packaging.DASH() {
				tracks, err := parseMPD([]byte(readFile(t, res.cmd.OutDir, "manifest.mpd")))
				require.NoError(t, err)
				var files []string
				for _, tr := range tracks {
					if tr.file != "" {
						files = append(files, tr.file)
					}
				}
				assert.Equal(t, []string{"subtitles/en.vtt", "subtitles/fr.vtt", "subtitles/fr-2.vtt", "subtitles/pt-BR.vtt"}, files)
				assert.Contains(t, readFile(t, res.cmd.OutDir, "manifest.mpd"), `contentType="text" mimeType="text/vtt" lang="pt-BR"`)
			}
		})
	}
}

// A player reads a sidecar's cues through its HLS playlist.
func TestSidecarCaptionsPlayable(t *testing.T) {
	t.Parallel()
	ffmpegBin, _ := binaries(t)
	input := makeClip(t, clip{width: 320, height: 180, seconds: 4, audio: true})
	in := probeClip(t, input)
	converted, err := ConvertCaptions(t.Context(), ffmpegBin,
		[]Caption{{File: writeCaption(t, t.TempDir(), "fr.srt", frenchSRT), Language: "fr", Format: caption.FormatSRT}}, in.DurationSeconds, t.TempDir())
	require.NoError(t, err)
	spec := smallSpec(encodespec.PackagingHLS)
	spec.SegmentSeconds = 1
	res := encode(t, spec, input, converted...)
	b, err := exec.Command(ffmpegBin, "-v", "error", "-i", filepath.Join(res.cmd.OutDir, "subtitles", "fr.m3u8"), "-f", "webvtt", "-").CombinedOutput()
	require.NoError(t, err, "%s", b)
	assert.Contains(t, string(b), "Un sous-titre")
	assert.Contains(t, readFile(t, res.cmd.OutDir, "master.m3u8"), `SUBTITLES="subs"`)
}

// A caption file that is not what it claims, or does not fit the video,
// fails the job as the input's fault before anything is encoded, and the
// message names the file without local paths.
func TestConvertCaptionsRefuses(t *testing.T) {
	t.Parallel()
	ffmpegBin, _ := binaries(t)
	dir := t.TempDir()
	for name, tt := range map[string]struct {
		text, format, language string
		want                   string
	}{
		"not SubRip":          {"this is not\na caption file\n", caption.FormatSRT, "fr", "caption file 1 (fr, SubRip): it holds no cue"},
		"WebVTT given as srt": {brazilVTT, caption.FormatSRT, "pt", "caption file 1 (pt, SubRip): it holds no cue"},
		"SubRip given as vtt": {frenchSRT, caption.FormatVTT, "fr", "caption file 1 (fr, WebVTT): it holds no cue"},
		"empty":               {"", caption.FormatVTT, "fr", "caption file 1 (fr, WebVTT): it holds no cue"},
		"cue after the end":   {"1\n00:00:09,000 --> 00:00:10,000\nLate\n", caption.FormatSRT, "de", "caption file 1 (de, SubRip): cue 1 ends at 10.000 s, after the video's end (4.000 s)"},
		"ffmpeg directives":   {"ffconcat version 1.0\nfile /etc/passwd\n", caption.FormatSRT, "fr", "it holds no cue"},
		"bad language":        {frenchSRT, caption.FormatSRT, "fr/../../x", "caption file 1: its language must be a BCP 47 language tag"},
		"unknown format":      {frenchSRT, "ass", "fr", `caption file 1 (fr): unknown format "ass"`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			file := writeCaption(t, dir, strings.ReplaceAll(name, " ", "_"), tt.text)
			out := t.TempDir()
			_, err := ConvertCaptions(t.Context(), ffmpegBin, []Caption{{File: file, Language: tt.language, Format: tt.format}}, 4, out)
			require.ErrorIs(t, err, ErrInput)
			var ie *InputError
			require.True(t, errors.As(err, &ie))
			assert.Contains(t, ie.Msg, tt.want)
			assert.NotContains(t, ie.Msg, dir, "no local paths")
		})
	}
}

// Plan takes only converted captions.
func TestPlanRefusesUnconvertedCaptions(t *testing.T) {
	t.Parallel()
	input := makeClip(t, clip{width: 320, height: 180, seconds: 2})
	in := probeClip(t, input)
	_, err := Plan(smallSpec(encodespec.PackagingHLS), in, input, t.TempDir(), nil,
		WithCaptions(Caption{File: "x.srt", Language: "fr", Format: caption.FormatSRT}))
	require.ErrorContains(t, err, "convert it first")
}
