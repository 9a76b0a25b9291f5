package ffmpeg

import (
	"context"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// TestOtherCodecs runs every CPU encoder and both audio codecs through a
// real encode; Verify checks each rendition's codec and size, and the HLS
// master playlist must carry a correct CODECS value for each.
func TestOtherCodecs(t *testing.T) {
	t.Parallel()
	input := makeClip(t, clip{width: 320, height: 180, seconds: 1, audio: true})
	crf := 40
	tests := map[string]struct {
		rendition  encodespec.Rendition
		audio      *encodespec.Audio
		packaging  encodespec.Packaging
		wantCodecs string // regexp for the master playlist's CODECS; "" for DASH
	}{
		"hevc hls": {
			rendition: encodespec.Rendition{Codec: "hevc", Height: 180, BitrateKbps: 200, Preset: "ultrafast"},
			audio:     &encodespec.Audio{Codec: "aac"},
			packaging: "hls", wantCodecs: `hvc1\.1\.6\.L\d+\.[0-9A-F]+,mp4a\.40\.2`,
		},
		"av1 hls with opus and loudnorm": {
			rendition: encodespec.Rendition{Codec: "av1", Height: 180, BitrateKbps: 200, Preset: "12"},
			audio:     &encodespec.Audio{Codec: "opus", Loudnorm: &encodespec.Loudnorm{}},
			packaging: "hls", wantCodecs: `av01\.0\.\d\dM\.08,Opus`,
		},
		"vp9 dash": {
			rendition: encodespec.Rendition{Codec: "vp9", Height: 180, CRF: nil, BitrateKbps: 200, Preset: "realtime"},
			audio:     &encodespec.Audio{Codec: "opus", Channels: 1},
			packaging: "dash",
		},
		"av1 mp4 by crf": {
			rendition: encodespec.Rendition{Codec: "av1", Height: 120, CRF: &crf, Preset: "12"},
			audio:     &encodespec.Audio{Codec: "aac", Channels: 6},
			packaging: "mp4",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			spec := encodespec.Spec{Renditions: []encodespec.Rendition{tt.rendition}, Audio: tt.audio, Packaging: tt.packaging}
			spec.Normalize()
			require.NoError(t, spec.Validate())
			res := encode(t, spec, input)
			if tt.wantCodecs != "" {
				master := readFile(t, res.cmd.OutDir, "master.m3u8")
				require.Regexp(t, regexp.MustCompile(`CODECS="`+tt.wantCodecs+`"`), master)
			}
		})
	}
}

// TestLibaomFallback encodes with libaom-av1, the AV1 encoder used when
// the FFmpeg build lacks SVT-AV1.
func TestLibaomFallback(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ffmpegBin, ffprobeBin := binaries(t)
	input := makeClip(t, clip{width: 160, height: 90, seconds: 1})
	in, err := Probe(ctx, ffprobeBin, input)
	require.NoError(t, err)
	spec := encodespec.Spec{
		Renditions: []encodespec.Rendition{{Codec: "av1", Height: 90, BitrateKbps: 100, Preset: "13"}},
		Packaging:  "hls", SegmentSeconds: 1,
	}
	spec.Normalize()
	encoders, err := ChooseEncoders(ctx, AcceleratorCPU, []string{"av1"},
		func(e string) bool { return e == "libaom-av1" }, nil)
	require.NoError(t, err)
	cmd, err := Plan(spec, in, input, filepath.Join(t.TempDir(), "out"), encoders)
	require.NoError(t, err)
	require.NoError(t, Run(ctx, ffmpegBin, cmd, in.DurationSeconds, nil))
	outputs, err := Collect(cmd)
	require.NoError(t, err)
	require.NoError(t, Verify(ctx, ffprobeBin, cmd, outputs, in))
	require.Equal(t, "libaom-av1", cmd.Encoders[0].Encoder)
}
