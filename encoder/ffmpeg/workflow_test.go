package ffmpeg

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/encodespec"
)

func TestBuiltinWorkflows(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		source clip
		// wantSizes are the video renditions, name -> size.
		wantSizes map[string]string
		// wantFiles must be among the outputs.
		wantFiles []string
		// check inspects the outputs further.
		check func(t *testing.T, res encodeResult)
	}{
		"mp4-720p": {
			source:    clip{width: 1280, height: 720, seconds: 1, audio: true},
			wantSizes: map[string]string{"720p": "1280x720"},
			wantFiles: []string{"720p.mp4"},
		},
		"hls-ladder": {
			source:    clip{width: 854, height: 480, seconds: 2, audio: true},
			wantSizes: map[string]string{"480p": "854x480", "360p": "640x360"},
			wantFiles: []string{"master.m3u8", "480p/index.m3u8", "480p/init.mp4", "480p/seg_00000.m4s",
				"360p/index.m3u8", "360p/init.mp4", "audio/index.m3u8", "audio/init.mp4", "audio/seg_00000.m4s"},
			check: checkHLSPlaylists,
		},
		"dash-ladder": {
			source:    clip{width: 854, height: 480, seconds: 2, audio: true},
			wantSizes: map[string]string{"480p": "854x480", "360p": "640x360"},
			wantFiles: []string{"manifest.mpd", "init_0.m4s", "init_1.m4s", "init_2.m4s", "seg_0_00001.m4s", "seg_2_00001.m4s"},
		},
		"thumbnails": {
			source:    clip{width: 640, height: 360, seconds: 3, audio: true},
			wantSizes: map[string]string{},
			wantFiles: []string{"poster.jpg", "thumbs/thumb_00001.jpg"},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			input := makeClip(t, tt.source)
			res := encode(t, builtin(t, name), input)

			require.Empty(t, cmp.Diff(tt.wantSizes, renditionSizes(res.cmd)))
			names := map[string]Output{}
			for _, o := range res.outputs {
				names[o.Name] = o
			}
			for _, f := range tt.wantFiles {
				require.Contains(t, names, f)
			}
			for _, o := range res.outputs {
				require.NotEmpty(t, o.Kind, o.Name)
				require.NotEmpty(t, o.ContentType, o.Name)
				if o.Kind == KindVideo {
					require.Equal(t, tt.wantSizes[o.Rendition], sizeOf(o), o.Name)
				}
			}
			if tt.check != nil {
				tt.check(t, res)
			}
		})
	}
}

// checkHLSPlaylists checks the master playlist written by Run and a media
// playlist written by FFmpeg.
func checkHLSPlaylists(t *testing.T, res encodeResult) {
	master := readFile(t, res.cmd.OutDir, "master.m3u8")
	require.Contains(t, master, `#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="audio",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="audio/index.m3u8"`)
	variant := regexp.MustCompile(`(?m)^#EXT-X-STREAM-INF:BANDWIDTH=(\d+),AVERAGE-BANDWIDTH=(\d+),CODECS="(avc1\.[0-9a-f]{6}),mp4a\.40\.2",RESOLUTION=(\d+x\d+),AUDIO="audio"\n(.+)$`)
	matches := variant.FindAllStringSubmatch(master, -1)
	require.Len(t, matches, 2, master)
	// name, CODECS prefix (profile: high 0x64, main 0x4d), resolution
	want := [][3]string{{"480p/index.m3u8", "avc1.64", "854x480"}, {"360p/index.m3u8", "avc1.4d", "640x360"}}
	for i, m := range matches {
		require.Equal(t, want[i][0], m[5])
		require.True(t, strings.HasPrefix(m[3], want[i][1]), "CODECS %s for %s", m[3], m[5])
		require.Equal(t, want[i][2], m[4])
		peak, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		avg, err := strconv.Atoi(m[2])
		require.NoError(t, err)
		require.GreaterOrEqual(t, peak, avg)
		require.Greater(t, avg, 128_000, "video plus audio")
	}

	// Media playlists use fMP4 with a shared init segment name.
	media := readFile(t, res.cmd.OutDir, "480p/index.m3u8")
	require.Contains(t, media, `#EXT-X-MAP:URI="init.mp4"`)
	require.Contains(t, media, "#EXT-X-PLAYLIST-TYPE:VOD")
	require.Contains(t, media, "#EXT-X-ENDLIST")
}

func TestAudiolessInput(t *testing.T) {
	t.Parallel()
	input := makeClip(t, clip{width: 320, height: 180, seconds: 2})
	for _, packaging := range []string{encodespec.PackagingMP4, encodespec.PackagingHLS, encodespec.PackagingDASH} {
		t.Run(packaging, func(t *testing.T) {
			t.Parallel()
			spec := smallSpec(packaging) // asks for AAC audio
			res := encode(t, spec, input)
			require.False(t, res.in.HasAudio)
			for _, o := range res.outputs {
				require.NotEqual(t, KindAudio, o.Kind, o.Name)
			}
			if packaging == encodespec.PackagingHLS {
				require.NotContains(t, readFile(t, res.cmd.OutDir, "master.m3u8"), "EXT-X-MEDIA")
			}
		})
	}
}

// smallSpec is a two-rung H.264 ladder with AAC audio, small enough to
// encode in a fraction of a second.
func smallSpec(packaging string) encodespec.Spec {
	s := encodespec.Spec{
		Renditions: []encodespec.Rendition{
			{Codec: encodespec.CodecH264, Height: 180, BitrateKbps: 300, Preset: "ultrafast"},
			{Codec: encodespec.CodecH264, Height: 120, BitrateKbps: 150, Preset: "ultrafast"},
		},
		Audio:     &encodespec.Audio{Codec: encodespec.AudioAAC},
		Packaging: packaging,
	}
	s.Normalize()
	return s
}

func sizeOf(o Output) string { return fmt.Sprintf("%dx%d", o.Width, o.Height) }
