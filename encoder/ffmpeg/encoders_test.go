package ffmpeg

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

func TestChooseEncoders(t *testing.T) {
	t.Parallel()
	all := []string{"libx264", "libx265", "libsvtav1", "libaom-av1", "libvpx-vp9", "h264_nvenc", "hevc_nvenc", "av1_nvenc"}
	without := func(missing ...string) []string {
		var out []string
	next:
		for _, e := range all {
			for _, m := range missing {
				if e == m {
					continue next
				}
			}
			out = append(out, e)
		}
		return out
	}
	probeFails := func(context.Context, string) error { return errors.New("Cannot load libcuda.so.1") }
	probeOK := func(context.Context, string) error { return nil }

	tests := map[string]struct {
		accelerator string
		codecs      []string
		available   []string
		probe       func(context.Context, string) error // nil: must not be called
		want        []EncoderChoice
		wantProbes  []string
		wantErr     string
	}{
		"nvidia, probe fails: libx264 with the reason": {
			accelerator: "nvidia", codecs: []string{"h264"}, available: all, probe: probeFails,
			want:       []EncoderChoice{{Codec: "h264", Encoder: "libx264", Fallback: "h264_nvenc probe failed: Cannot load libcuda.so.1"}},
			wantProbes: []string{"h264_nvenc"},
		},
		"nvidia, probe succeeds: h264_nvenc": {
			accelerator: "nvidia", codecs: []string{"h264"}, available: all, probe: probeOK,
			want:       []EncoderChoice{{Codec: "h264", Encoder: "h264_nvenc", Hardware: true}},
			wantProbes: []string{"h264_nvenc"},
		},
		"nvidia, every codec once, in order": {
			accelerator: "nvidia", codecs: []string{"hevc", "h264", "av1", "vp9", "h264"}, available: all, probe: probeOK,
			want: []EncoderChoice{
				{Codec: "hevc", Encoder: "hevc_nvenc", Hardware: true},
				{Codec: "h264", Encoder: "h264_nvenc", Hardware: true},
				{Codec: "av1", Encoder: "av1_nvenc", Hardware: true},
				{Codec: "vp9", Encoder: "libvpx-vp9", Fallback: "no NVENC encoder exists for vp9"},
			},
			wantProbes: []string{"hevc_nvenc", "h264_nvenc", "av1_nvenc"},
		},
		"nvidia, NVENC not built in: no probe": {
			accelerator: "nvidia", codecs: []string{"av1"}, available: without("av1_nvenc"),
			want: []EncoderChoice{{Codec: "av1", Encoder: "libsvtav1", Fallback: "av1_nvenc is not in this FFmpeg build"}},
		},
		"cpu never probes": {
			accelerator: "cpu", codecs: []string{"h264", "hevc", "av1", "vp9"}, available: all,
			want: []EncoderChoice{
				{Codec: "h264", Encoder: "libx264"},
				{Codec: "hevc", Encoder: "libx265"},
				{Codec: "av1", Encoder: "libsvtav1"},
				{Codec: "vp9", Encoder: "libvpx-vp9"},
			},
		},
		"empty accelerator means cpu": {
			accelerator: "", codecs: []string{"h264"}, available: all,
			want: []EncoderChoice{{Codec: "h264", Encoder: "libx264"}},
		},
		"av1 without svt: libaom-av1": {
			accelerator: "cpu", codecs: []string{"av1"}, available: without("libsvtav1"),
			want: []EncoderChoice{{Codec: "av1", Encoder: "libaom-av1", Fallback: "libsvtav1 not in this FFmpeg build"}},
		},
		"nvidia probe fails and no svt: both reasons": {
			accelerator: "nvidia", codecs: []string{"av1"}, available: without("libsvtav1"), probe: probeFails,
			want: []EncoderChoice{{Codec: "av1", Encoder: "libaom-av1",
				Fallback: "av1_nvenc probe failed: Cannot load libcuda.so.1; libsvtav1 not in this FFmpeg build"}},
			wantProbes: []string{"av1_nvenc"},
		},
		"codec with no encoder": {
			accelerator: "cpu", codecs: []string{"h264", "vp9"}, available: without("libvpx-vp9"),
			wantErr: "no encoder for vp9",
		},
		"unknown codec": {
			accelerator: "cpu", codecs: []string{"mpeg2"}, available: all,
			wantErr: `unknown codec "mpeg2"`,
		},
		"unknown accelerator": {
			accelerator: "amd", codecs: []string{"h264"}, available: all,
			wantErr: `unknown accelerator "amd"`,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			set := map[string]bool{}
			for _, e := range tt.available {
				set[e] = true
			}
			var probed []string
			probe := func(ctx context.Context, enc string) error {
				probed = append(probed, enc)
				if tt.probe == nil {
					t.Errorf("probe encode of %s must not run", enc)
					return nil
				}
				return tt.probe(ctx, enc)
			}
			got, err := ChooseEncoders(context.Background(), tt.accelerator, tt.codecs, func(e string) bool { return set[e] }, probe)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Empty(t, cmp.Diff(tt.want, got))
			require.Empty(t, cmp.Diff(tt.wantProbes, probed))
		})
	}
}

func TestChooseEncodersStopsWhenCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	probe := func(ctx context.Context, _ string) error {
		cancel()
		return ctx.Err()
	}
	_, err := ChooseEncoders(ctx, "nvidia", []string{"h264"}, func(string) bool { return true }, probe)
	require.ErrorIs(t, err, context.Canceled, "a cancelled probe must not silently fall back to CPU")
}

func TestAvailableEncoders(t *testing.T) {
	t.Parallel()
	ffmpegBin, _ := binaries(t)
	available, err := AvailableEncoders(context.Background(), ffmpegBin)
	require.NoError(t, err)
	for _, enc := range []string{"libx264", "libx265", "libvpx-vp9", "aac", "libopus", "mjpeg"} {
		require.True(t, available(enc), enc)
	}
	require.False(t, available("V....D"), "the capability column is not an encoder")
	require.False(t, available("no_such_encoder"))
}

func TestParseEncoders(t *testing.T) {
	t.Parallel()
	out := `Encoders:
 V..... = Video
 A..... = Audio
 ------
 V....D libx264              libx264 H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10 (codec h264)
 V....D h264_nvenc           NVIDIA NVENC H.264 encoder (codec h264)
 A..... aac                  AAC (Advanced Audio Coding)
`
	require.Equal(t, map[string]bool{"libx264": true, "h264_nvenc": true, "aac": true}, parseEncoders(out))
}

func TestDefaultProbeEncode(t *testing.T) {
	t.Parallel()
	ffmpegBin, _ := binaries(t)
	probe := DefaultProbeEncode(ffmpegBin)
	require.NoError(t, probe(context.Background(), "libx264"))
	err := probe(context.Background(), "no_such_encoder")
	require.ErrorContains(t, err, "no_such_encoder")
}
