package ffmpeg

import (
	"fmt"
	"os/exec"
	"path/filepath"
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
		"cmaf-ladder": {
			source:    clip{width: 854, height: 480, seconds: 2, audio: true},
			wantSizes: map[string]string{"480p": "854x480", "360p": "640x360"},
			wantFiles: []string{"manifest.mpd", "master.m3u8", "media_0.m3u8", "media_1.m3u8", "media_2.m3u8",
				"init_0.m4s", "init_1.m4s", "init_2.m4s", "seg_0_00001.m4s", "seg_2_00001.m4s"},
			check: checkCMAF,
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

// checkCMAF checks that one set of segments is described alike by the MPD
// and the HLS playlists, that the playlists are VOD playlists, and that
// FFmpeg, as a player, decodes the whole input through either manifest.
func checkCMAF(t *testing.T, res encodeResult) {
	mpd, err := parseMPD([]byte(readFile(t, res.cmd.OutDir, "manifest.mpd")))
	require.NoError(t, err)
	require.Len(t, mpd, 3, "two video representations and the audio")
	for i, tr := range mpd {
		name := fmt.Sprintf("media_%d.m3u8", i)
		text := readFile(t, res.cmd.OutDir, name)
		pl, err := parseM3U8([]byte(text))
		require.NoError(t, err)
		require.Equal(t, tr.init, pl.mapURI, name)
		var segs []string
		for _, s := range pl.segments {
			segs = append(segs, s.uri)
		}
		require.Equal(t, tr.segments, segs, "%s and the MPD list the same segments", name)
		require.Contains(t, text, "#EXT-X-PLAYLIST-TYPE:VOD\n")
		require.Contains(t, text, "#EXT-X-ENDLIST")
		require.NotContains(t, text, "PROGRAM-DATE-TIME", "no wall-clock time in a VOD playlist")
	}

	master := readFile(t, res.cmd.OutDir, "master.m3u8")
	require.Contains(t, master, `#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="audio",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="media_2.m3u8"`)
	variant := regexp.MustCompile(`(?m)^#EXT-X-STREAM-INF:BANDWIDTH=\d+,AVERAGE-BANDWIDTH=\d+,CODECS="avc1\.[0-9a-f]{6},mp4a\.40\.2",RESOLUTION=(\d+x\d+),AUDIO="audio"\n(.+)$`)
	var got [][2]string
	for _, m := range variant.FindAllStringSubmatch(master, -1) {
		got = append(got, [2]string{m[1], m[2]})
	}
	require.Equal(t, [][2]string{{"854x480", "media_0.m3u8"}, {"640x360", "media_1.m3u8"}}, got, master)

	ffmpegBin, _ := binaries(t)
	for _, manifest := range []string{"master.m3u8", "manifest.mpd"} {
		out, err := exec.Command(ffmpegBin, "-v", "error", "-i", filepath.Join(res.cmd.OutDir, manifest),
			"-map", "0:v:0", "-map", "0:a:0", "-f", "null", "-").CombinedOutput()
		require.NoError(t, err, "FFmpeg plays %s: %s", manifest, out)
		require.Empty(t, strings.TrimSpace(string(out)), "FFmpeg decodes %s without complaint", manifest)
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
	for _, packaging := range []encodespec.Packaging{encodespec.PackagingMP4, encodespec.PackagingHLS, encodespec.PackagingDASH, encodespec.PackagingCMAF} {
		t.Run(string(packaging), func(t *testing.T) {
			t.Parallel()
			spec := smallSpec(packaging) // asks for AAC audio
			res := encode(t, spec, input)
			require.False(t, res.in.HasAudio)
			for _, o := range res.outputs {
				require.NotEqual(t, KindAudio, o.Kind, o.Name)
			}
			if packaging.HLS() {
				require.NotContains(t, readFile(t, res.cmd.OutDir, "master.m3u8"), "EXT-X-MEDIA")
			}
		})
	}
}

// smallSpec is a two-rung H.264 ladder with AAC audio, small enough to
// encode in a fraction of a second.
func smallSpec(packaging encodespec.Packaging) encodespec.Spec {
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
