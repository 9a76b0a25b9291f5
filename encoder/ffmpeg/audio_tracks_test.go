package ffmpeg

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// TestAudioTracks: every audio stream of the input becomes its own
// language-tagged audio rendition: MP4 files carry each, HLS lists each in
// the audio group (the first the default), DASH gives each its adaptation
// set with its language.
func TestAudioTracks(t *testing.T) {
	t.Parallel()
	ffmpegBin, ffprobeBin := binaries(t)
	input := filepath.Join(t.TempDir(), "in.mkv")
	b, err := exec.Command(ffmpegBin, "-nostdin", "-v", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=3",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-f", "lavfi", "-i", "sine=frequency=880:duration=3",
		"-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
		"-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fra", "-metadata:s:a:1", `title=Français "VF"`, input).CombinedOutput()
	require.NoError(t, err, "%s", b)

	for _, packaging := range []encodespec.Packaging{encodespec.PackagingMP4, encodespec.PackagingHLS, encodespec.PackagingDASH, encodespec.PackagingCMAF} {
		t.Run(string(packaging), func(t *testing.T) {
			t.Parallel()
			spec := smallSpec(packaging)
			if packaging.Segmented() {
				spec.SegmentSeconds = 1
			}
			res := encode(t, spec, input)
			var audio []Output
			for _, o := range res.cmd.ExpectedOutputs {
				if o.Kind == KindAudio {
					audio = append(audio, o)
				}
			}
			switch packaging {
			case encodespec.PackagingMP4:
				require.Empty(t, audio, "MP4 files carry the audio")
				out, err := exec.Command(ffprobeBin, "-v", "error", "-select_streams", "a", "-show_entries", "stream_tags=language",
					"-of", "csv=p=0", filepath.Join(res.cmd.OutDir, "180p.mp4")).CombinedOutput()
				require.NoError(t, err, "%s", out)
				assert.Equal(t, "eng\nfra", strings.TrimSpace(string(out)), "both tracks, with their languages")
				return
			}
			require.Len(t, audio, 2)
			assert.Equal(t, map[string]string{apiv1.AudioAttrLanguage: "en"}, audio[0].Attributes)
			assert.Equal(t, map[string]string{apiv1.AudioAttrLanguage: "fr", apiv1.AudioAttrTitle: `Français "VF"`}, audio[1].Attributes)
			assert.Equal(t, "audio", audio[0].Rendition)
			assert.Equal(t, "audio_fr", audio[1].Rendition)
			if packaging.HLS() {
				master := readFile(t, res.cmd.OutDir, "master.m3u8")
				assert.Contains(t, master, `TYPE=AUDIO,GROUP-ID="audio",NAME="audio",LANGUAGE="en",DEFAULT=YES`)
				// A quote in the title cannot end HLS's quoted string early.
				assert.Contains(t, master, `TYPE=AUDIO,GROUP-ID="audio",NAME="Français 'VF'",LANGUAGE="fr",DEFAULT=NO`)
			}
			if packaging.DASH() {
				mpd := readFile(t, res.cmd.OutDir, "manifest.mpd")
				assert.Equal(t, 2, strings.Count(mpd, `contentType="audio"`), "an adaptation set per language: %s", mpd)
				assert.Contains(t, mpd, `lang="en"`, "BCP 47, as DASH wants")
				assert.Contains(t, mpd, `lang="fr"`)
			}
		})
	}
}

// threeAudioInput is a 3 s Matroska file with English, French and an
// untagged audio stream, in that order.
func threeAudioInput(t *testing.T) string {
	t.Helper()
	ffmpegBin, _ := binaries(t)
	input := filepath.Join(t.TempDir(), "in.mkv")
	b, err := exec.Command(ffmpegBin, "-nostdin", "-v", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=3",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-f", "lavfi", "-i", "sine=frequency=880:duration=3",
		"-f", "lavfi", "-i", "sine=frequency=660:duration=3",
		"-map", "0:v", "-map", "1:a", "-map", "2:a", "-map", "3:a", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
		"-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fra", "-metadata:s:a:2", "language=und", input).CombinedOutput()
	require.NoError(t, err, "%s", b)
	return input
}

// TestAudioSelection: the spec's audio languages and stream indexes choose
// which input streams become renditions, in the input's order; the master
// playlist lists exactly those.
func TestAudioSelection(t *testing.T) {
	t.Parallel()
	input := threeAudioInput(t)
	for name, tt := range map[string]struct {
		languages []string
		indexes   []int
		want      []string // LANGUAGE of each audio EXT-X-MEDIA line, "" for none
	}{
		"all by default":          {want: []string{"en", "fr", ""}},
		"French by ISO 639-2":     {languages: []string{"fra"}, want: []string{"fr"}},
		"English and a region":    {languages: []string{"en-GB"}, want: []string{"en"}},
		"the untagged one by und": {languages: []string{"und"}, want: []string{""}},
		"by index":                {indexes: []int{2, 1}, want: []string{"fr", ""}},
		"language or index":       {languages: []string{"en"}, indexes: []int{2}, want: []string{"en", ""}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			spec := smallSpec(encodespec.PackagingHLS)
			spec.SegmentSeconds = 1
			spec.Audio.Languages, spec.Audio.StreamIndexes = tt.languages, tt.indexes
			require.NoError(t, spec.Validate())
			res := encode(t, spec, input)
			var got []string
			for _, line := range strings.Split(readFile(t, res.cmd.OutDir, "master.m3u8"), "\n") {
				if !strings.HasPrefix(line, "#EXT-X-MEDIA:TYPE=AUDIO") {
					continue
				}
				lang := ""
				if _, rest, ok := strings.Cut(line, `LANGUAGE="`); ok {
					lang, _, _ = strings.Cut(rest, `"`)
				}
				got = append(got, lang)
			}
			assert.Equal(t, tt.want, got)
			assert.Contains(t, readFile(t, res.cmd.OutDir, "master.m3u8"), `NAME="audio"`, "the first kept track is the rendition audio")
		})
	}
}

// A spec choosing audio the input does not have fails as the input's
// fault, naming what the input has.
func TestAudioSelectionMatchesNothing(t *testing.T) {
	t.Parallel()
	input := threeAudioInput(t)
	in := probeClip(t, input)
	spec := smallSpec(encodespec.PackagingHLS)
	spec.SegmentSeconds = 1
	spec.Audio.Languages, spec.Audio.StreamIndexes = []string{"ja"}, []int{7}
	enc, err := ChooseEncoders(t.Context(), AcceleratorCPU, []string{encodespec.CodecH264}, availableEncoders(t), nil)
	require.NoError(t, err)
	_, err = Plan(spec, in, input, t.TempDir(), enc)
	require.ErrorIs(t, err, ErrInput)
	assert.ErrorContains(t, err, "choose none of the input's audio streams: 0 (en), 1 (fr), 2 (und)")
}
