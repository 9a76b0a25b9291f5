package ffmpeg

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/encodespec"
)

var cpuEncoders = []EncoderChoice{
	{Codec: "h264", Encoder: "libx264"},
	{Codec: "hevc", Encoder: "libx265"},
	{Codec: "av1", Encoder: "libsvtav1"},
	{Codec: "vp9", Encoder: "libvpx-vp9"},
}

func source(w, h int) MediaInfo {
	return MediaInfo{DurationSeconds: 30, Width: w, Height: h, VideoCodec: "h264", FrameRate: 25, HasVideo: true, HasAudio: true, AudioChannels: 2, Container: "mov"}
}

// argValue returns the argument after the first occurrence of flag.
func argValue(args []string, flag string) string {
	i := slices.Index(args, flag)
	if i < 0 || i+1 >= len(args) {
		return ""
	}
	return args[i+1]
}

func TestPlanCommonArguments(t *testing.T) {
	t.Parallel()
	cmd, err := Plan(builtin(t, "hls-ladder"), source(1920, 1080), "in.mp4", "/out", cpuEncoders)
	require.NoError(t, err)

	require.Equal(t, []string{"-nostdin", "-hide_banner", "-y", "-loglevel", "warning", "-nostats", "-progress", "pipe:1"}, cmd.Args[:8])
	in := argValue(cmd.Args, "-i")
	require.True(t, strings.HasPrefix(in, "file:/"), "input must be an absolute file: URL, got %q", in)
	require.Equal(t, 1, strings.Count(strings.Join(cmd.Args, " "), " -i "), "one input, decoded once")
	i := slices.Index(cmd.Args, "-i")
	require.Equal(t, []string{"-f", "mov", "-format_whitelist", "mov", "-protocol_whitelist", "file", "-enable_drefs", "0"}, cmd.Args[8:i],
		"the input is opened with the probed demuxer only, local file protocol only, no QuickTime external references")
	require.Equal(t, "/out", cmd.OutDir)
	require.Equal(t, []string{"1080p", "720p", "480p", "360p", "audio"}, cmd.Dirs)
	require.Equal(t, []EncoderChoice{{Codec: "h264", Encoder: "libx264"}}, cmd.Encoders)

	graph := argValue(cmd.Args, "-filter_complex")
	require.Contains(t, graph, "[0:V:0]split=4[s0][s1][s2][s3]")
	for _, size := range []string{"w=1920:h=1080", "w=1280:h=720", "w=854:h=480", "w=640:h=360"} {
		require.Contains(t, graph, "scale="+size)
	}
	require.Contains(t, graph, "[0:a:0]aresample=48000,aformat=sample_rates=48000:channel_layouts=stereo[aout]")
	require.NotContains(t, graph, "loudnorm")

	// Every rendition: fixed GOP of one segment (4 s x 25 fps), keyframes
	// forced on segment boundaries, no scene-cut keyframes.
	joined := strings.Join(cmd.Args, " ")
	require.Equal(t, 4, strings.Count(joined, "-force_key_frames:v:0 expr:gte(t,n_forced*4)"))
	require.Equal(t, 4, strings.Count(joined, "-g:v:0 100"))
	require.Equal(t, 4, strings.Count(joined, "-sc_threshold:v:0 0"))
	require.Equal(t, 1, strings.Count(joined, "-c:a:0 aac -b:a:0 128k"), "audio is encoded once")
	require.Equal(t, 5, strings.Count(joined, "-f hls"))
}

func TestPlanExpectedOutputs(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		spec encodespec.Spec
		in   MediaInfo
		want []Output
	}{
		"mp4": {
			spec: builtin(t, "mp4-720p"), in: source(1920, 1080),
			want: []Output{{Name: "720p.mp4", Kind: KindVideo, ContentType: "video/mp4", Rendition: "720p", Width: 1280, Height: 720, Codec: "h264"}},
		},
		"hls": {
			spec: smallSpec(encodespec.PackagingHLS), in: source(320, 180),
			want: []Output{
				{Name: "180p/index.m3u8", Kind: KindPlaylist, ContentType: "application/vnd.apple.mpegurl", Rendition: "180p", Width: 320, Height: 180, Codec: "h264"},
				{Name: "180p/init.mp4", Kind: KindVideo, ContentType: "video/mp4", Rendition: "180p", Width: 320, Height: 180, Codec: "h264"},
				{Name: "120p/index.m3u8", Kind: KindPlaylist, ContentType: "application/vnd.apple.mpegurl", Rendition: "120p", Width: 214, Height: 120, Codec: "h264"},
				{Name: "120p/init.mp4", Kind: KindVideo, ContentType: "video/mp4", Rendition: "120p", Width: 214, Height: 120, Codec: "h264"},
				{Name: "audio/index.m3u8", Kind: KindPlaylist, ContentType: "application/vnd.apple.mpegurl", Rendition: "audio", Codec: "aac"},
				{Name: "audio/init.mp4", Kind: KindAudio, ContentType: "audio/mp4", Rendition: "audio", Codec: "aac"},
				{Name: "master.m3u8", Kind: KindPlaylist, ContentType: "application/vnd.apple.mpegurl"},
			},
		},
		"dash": {
			spec: smallSpec(encodespec.PackagingDASH), in: source(320, 180),
			want: []Output{
				{Name: "init_0.m4s", Kind: KindVideo, ContentType: "video/iso.segment", Rendition: "180p", Width: 320, Height: 180, Codec: "h264"},
				{Name: "init_1.m4s", Kind: KindVideo, ContentType: "video/iso.segment", Rendition: "120p", Width: 214, Height: 120, Codec: "h264"},
				{Name: "init_2.m4s", Kind: KindAudio, ContentType: "video/iso.segment", Rendition: "audio", Codec: "aac"},
				{Name: "manifest.mpd", Kind: KindManifest, ContentType: "application/dash+xml"},
			},
		},
		"thumbnails": {
			spec: builtin(t, "thumbnails"), in: source(1920, 1080),
			want: []Output{{Name: "poster.jpg", Kind: KindPoster, ContentType: "image/jpeg", Width: 320, Height: 180}},
		},
		"thumbnails never wider than the source": {
			spec: builtin(t, "thumbnails"), in: source(200, 100),
			want: []Output{{Name: "poster.jpg", Kind: KindPoster, ContentType: "image/jpeg", Width: 200, Height: 100}},
		},
		"audio-less input has no audio outputs": {
			spec: smallSpec(encodespec.PackagingDASH), in: MediaInfo{DurationSeconds: 3, Width: 320, Height: 180, HasVideo: true, Container: "mov"},
			want: []Output{
				{Name: "init_0.m4s", Kind: KindVideo, ContentType: "video/iso.segment", Rendition: "180p", Width: 320, Height: 180, Codec: "h264"},
				{Name: "init_1.m4s", Kind: KindVideo, ContentType: "video/iso.segment", Rendition: "120p", Width: 214, Height: 120, Codec: "h264"},
				{Name: "manifest.mpd", Kind: KindManifest, ContentType: "application/dash+xml"},
			},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd, err := Plan(tt.spec, tt.in, "in.mp4", "out", cpuEncoders)
			require.NoError(t, err)
			// Every video output records how the input was conditioned
			// (TestConditioning checks the decisions); the rest is pinned.
			for i, o := range cmd.ExpectedOutputs {
				if o.Kind == KindVideo {
					require.Contains(t, o.Attributes, AttrDeinterlace, o.Name)
					require.Contains(t, o.Attributes, AttrToneMap, o.Name)
					require.Contains(t, o.Attributes, AttrFrameRate, o.Name)
					cmd.ExpectedOutputs[i].Attributes = nil
				}
			}
			require.Empty(t, cmp.Diff(tt.want, cmd.ExpectedOutputs))
		})
	}
}

func TestPlanNeverUpscales(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		in   MediaInfo
		want map[string]string
	}{
		"640x360 gets only 360p":     {source(640, 360), map[string]string{"360p": "640x360"}},
		"1280x720 tops out at 720p":  {source(1280, 720), map[string]string{"720p": "1280x720", "480p": "854x480", "360p": "640x360"}},
		"odd 1279x719 is made even":  {source(1279, 719), map[string]string{"720p": "1278x718", "480p": "854x480", "360p": "640x360"}},
		"portrait keeps orientation": {source(720, 1280), map[string]string{"720p": "720x1280", "480p": "480x854", "360p": "360x640"}},
		"tiny source still encodes":  {source(100, 50), map[string]string{"360p": "100x50"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd, err := Plan(builtin(t, "hls-ladder"), tt.in, "in.mp4", "out", cpuEncoders)
			require.NoError(t, err)
			require.Empty(t, cmp.Diff(tt.want, renditionSizes(cmd)))
		})
	}
}

func TestPlanAudio(t *testing.T) {
	t.Parallel()
	spec := smallSpec(encodespec.PackagingHLS)
	spec.Audio = &encodespec.Audio{Codec: encodespec.AudioOpus, Channels: 6,
		Loudnorm: &encodespec.Loudnorm{IntegratedLUFS: -16, TruePeakDB: -1.5, LRA: 11}}
	spec.Normalize()
	cmd, err := Plan(spec, source(320, 180), "in.mp4", "out", cpuEncoders)
	require.NoError(t, err)
	require.Contains(t, argValue(cmd.Args, "-filter_complex"),
		"[0:a:0]loudnorm=I=-16:TP=-1.5:LRA=11,aresample=48000,aformat=sample_rates=48000:channel_layouts=5.1[aout]")
	require.Contains(t, strings.Join(cmd.Args, " "), "-c:a:0 libopus -b:a:0 256k")
}

func TestPlanAudioGroupAvoidsRenditionNames(t *testing.T) {
	t.Parallel()
	spec := smallSpec(encodespec.PackagingHLS)
	spec.Renditions[0].Name = "audio"
	cmd, err := Plan(spec, source(320, 180), "in.mp4", "out", cpuEncoders)
	require.NoError(t, err)
	require.Equal(t, []string{"audio", "120p", "audio_2"}, cmd.Dirs)
}

func TestPlanEncoderOptions(t *testing.T) {
	t.Parallel()
	crf := 30
	tests := map[string]struct {
		rendition encodespec.Rendition
		encoder   EncoderChoice
		want      []string // consecutive argument pairs that must appear
		wantGraph string
	}{
		"x265 closed fixed GOP": {
			encodespec.Rendition{Codec: "hevc", Height: 180, BitrateKbps: 500, Profile: "main10"}, EncoderChoice{Codec: "hevc", Encoder: "libx265"},
			[]string{"-forced-idr:v:0 1", "-x265-params:v:0 scenecut=0:open-gop=0:log-level=error", "-tag:v:0 hvc1", "-profile:v:0 main10"},
			"format=yuv420p10le",
		},
		"h264 nvenc": {
			encodespec.Rendition{Codec: "h264", Height: 180, BitrateKbps: 500, Preset: "slow"}, EncoderChoice{Codec: "h264", Encoder: "h264_nvenc", Hardware: true},
			[]string{"-c:v:0 h264_nvenc", "-no-scenecut:v:0 1", "-forced-idr:v:0 1", "-preset:v:0 p5", "-rc:v:0 vbr", "-b:v:0 500k"},
			"format=yuv420p",
		},
		"hevc nvenc main10": {
			encodespec.Rendition{Codec: "hevc", Height: 180, CRF: &crf, Profile: "main10"}, EncoderChoice{Codec: "hevc", Encoder: "hevc_nvenc", Hardware: true},
			[]string{"-cq:v:0 30", "-b:v:0 0", "-tag:v:0 hvc1"},
			"format=p010le",
		},
		"svt-av1": {
			encodespec.Rendition{Codec: "av1", Height: 180, CRF: &crf, Preset: "10"}, EncoderChoice{Codec: "av1", Encoder: "libsvtav1"},
			[]string{"-preset:v:0 10", "-crf:v:0 30", "-g:v:0 50"},
			"format=yuv420p",
		},
		"libaom-av1": {
			encodespec.Rendition{Codec: "av1", Height: 180, BitrateKbps: 400, Preset: "12"}, EncoderChoice{Codec: "av1", Encoder: "libaom-av1"},
			[]string{"-cpu-used:v:0 8", "-keyint_min:v:0 50", "-b:v:0 400k"},
			"format=yuv420p",
		},
		"vp9 realtime": {
			encodespec.Rendition{Codec: "vp9", Height: 180, CRF: &crf, Preset: "realtime", Profile: "2"}, EncoderChoice{Codec: "vp9", Encoder: "libvpx-vp9"},
			[]string{"-deadline:v:0 realtime", "-crf:v:0 30", "-b:v:0 0", "-profile:v:0 2"},
			"format=yuv420p10le",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			spec := encodespec.Spec{Renditions: []encodespec.Rendition{tt.rendition}, Packaging: encodespec.PackagingMP4}
			spec.Normalize()
			cmd, err := Plan(spec, source(320, 180), "in.mp4", "out", []EncoderChoice{tt.encoder})
			require.NoError(t, err)
			joined := strings.Join(cmd.Args, " ")
			for _, w := range tt.want {
				require.Contains(t, joined, w)
			}
			require.Contains(t, argValue(cmd.Args, "-filter_complex"), tt.wantGraph)
		})
	}
}

func TestPlanErrors(t *testing.T) {
	t.Parallel()
	invalid := smallSpec(encodespec.PackagingHLS)
	invalid.Renditions[0].Preset = "-i /etc/passwd"

	_, err := Plan(invalid, source(320, 180), "in.mp4", "out", cpuEncoders)
	require.ErrorContains(t, err, "invalid encode spec")

	_, err = Plan(smallSpec(encodespec.PackagingHLS), source(320, 180), "in.mp4", "out", []EncoderChoice{{Codec: "hevc", Encoder: "libx265"}})
	require.ErrorContains(t, err, "no encoder chosen for codec h264")

	_, err = Plan(smallSpec(encodespec.PackagingHLS), MediaInfo{DurationSeconds: 3}, "in.mp4", "out", cpuEncoders)
	require.ErrorIs(t, err, ErrInput)

	unprobed := source(320, 180)
	unprobed.Container = ""
	_, err = Plan(smallSpec(encodespec.PackagingHLS), unprobed, "in.mp4", "out", cpuEncoders)
	require.ErrorContains(t, err, "container is unknown")
	require.NotErrorIs(t, err, ErrInput, "an unprobed input is the caller's bug")

	playlist := source(320, 180)
	playlist.Container = "hls"
	_, err = Plan(smallSpec(encodespec.PackagingHLS), playlist, "in.mp4", "out", cpuEncoders)
	require.ErrorIs(t, err, ErrInput)
	require.ErrorContains(t, err, "unsupported input container (hls)")
}
