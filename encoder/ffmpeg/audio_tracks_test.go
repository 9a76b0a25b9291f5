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
		"-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fra", "-metadata:s:a:1", "title=Français", input).CombinedOutput()
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
			assert.Equal(t, map[string]string{apiv1.AudioAttrLanguage: "fr", apiv1.AudioAttrTitle: "Français"}, audio[1].Attributes)
			assert.Equal(t, "audio", audio[0].Rendition)
			assert.Equal(t, "audio_fr", audio[1].Rendition)
			if packaging.HLS() {
				master := readFile(t, res.cmd.OutDir, "master.m3u8")
				assert.Contains(t, master, `TYPE=AUDIO,GROUP-ID="audio",NAME="audio",LANGUAGE="en",DEFAULT=YES`)
				assert.Contains(t, master, `TYPE=AUDIO,GROUP-ID="audio",NAME="Français",LANGUAGE="fr",DEFAULT=NO`)
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
