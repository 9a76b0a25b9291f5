package ffmpeg

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// pqInput is a 2 s HEVC PQ BT.2020 10-bit input with HDR10 mastering
// display (P3-D65 primaries, 1000 to 0.005 cd/m²) and content light level
// (1000, 400) SEI, as a grading suite delivers it.
func pqInput(t *testing.T) string {
	return conditioningInput(t, "testsrc2=size=320x180:rate=25",
		"-vf", "zscale=tin=bt709:pin=bt709:min=bt709:t=smpte2084:p=bt2020:m=bt2020nc,format=yuv420p10le",
		"-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
		"colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:hdr10=1:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50):max-cll=1000,400:log-level=error",
		"-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc")
}

// frameSideData lists the first frame's side data types and values of
// file's video, one "key=value" per line.
func frameSideData(t *testing.T, file string) string {
	t.Helper()
	_, ffprobeBin := binaries(t)
	b, err := exec.Command(ffprobeBin, "-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1", "-show_frames",
		"-show_entries", "frame_side_data", "-of", "default=noprint_wrappers=1", file).CombinedOutput()
	require.NoError(t, err, "%s", b)
	return string(b)
}

// TestHDRPassthrough: with tone_map passthrough a PQ input stays PQ in the
// HEVC and AV1 renditions (10 bits, BT.2020, the mastering display and
// content light level carried into the bitstream) while the H.264
// rendition and the poster are mapped to SDR BT.709; each rendition's
// decision is recorded.
func TestHDRPassthrough(t *testing.T) {
	t.Parallel()
	input := pqInput(t)
	in := probeClip(t, input)
	require.Equal(t, &MasteringDisplay{RedX: 0.68, RedY: 0.32, GreenX: 0.265, GreenY: 0.69, BlueX: 0.15, BlueY: 0.06,
		WhiteX: 0.3127, WhiteY: 0.329, MaxLuminance: 1000, MinLuminance: 0.005}, in.Mastering)
	require.Equal(t, &ContentLight{MaxCLL: 1000, MaxFALL: 400}, in.ContentLight)
	require.Equal(t, "bt2020nc", in.ColorSpace)

	spec := encodespec.Spec{
		Renditions: []encodespec.Rendition{
			{Name: "avc", Codec: encodespec.CodecH264, Height: 180, BitrateKbps: 300, Preset: "ultrafast"},
			{Name: "hevc", Codec: encodespec.CodecHEVC, Height: 180, BitrateKbps: 300, Preset: "ultrafast"},
			{Name: "av1", Codec: encodespec.CodecAV1, Height: 120, BitrateKbps: 200, Preset: "12"},
		},
		Packaging:    encodespec.PackagingMP4,
		Thumbnails:   &encodespec.Thumbnails{Poster: true},
		Conditioning: &encodespec.Conditioning{ToneMap: encodespec.ConditionPassthrough},
	}
	spec.Normalize()
	require.NoError(t, spec.Validate())
	res := encode(t, spec, input)
	graph := strings.Join(res.cmd.Args, " ")
	assert.Equal(t, 1, strings.Count(graph, "tonemap=tonemap=hable"), "one tone mapping, shared by the SDR branches: %s", graph)

	probe := func(name, entries string) string {
		return streamEntry(t, filepath.Join(res.cmd.OutDir, name), entries)
	}
	for _, name := range []string{"hevc.mp4", "av1.mp4"} {
		assert.Equal(t, "yuv420p10le\nbt2020nc\nsmpte2084\nbt2020", probe(name, "pix_fmt,color_space,color_transfer,color_primaries"), name)
		side := frameSideData(t, filepath.Join(res.cmd.OutDir, name))
		assert.Contains(t, side, "side_data_type=Mastering display metadata", name)
		assert.Contains(t, side, "max_content=1000", name)
		assert.Contains(t, side, "max_average=400", name)
		values := map[string]string{}
		for _, line := range strings.Split(side, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				values[k] = v
			}
		}
		// HEVC writes ST 2086 in 1/50000 and 1/10000 units, AV1 in 1/65536
		// and 1/256: compare the values.
		for key, want := range map[string]float64{"red_x": 0.68, "green_y": 0.69, "white_point_x": 0.3127, "max_luminance": 1000, "min_luminance": 0.005} {
			got, ok := rational(values[key])
			require.True(t, ok, "%s of %s: %q", key, name, values[key])
			assert.InDelta(t, want, got, want*0.01, "%s of %s", key, name)
		}
	}
	assert.Equal(t, "yuv420p\nbt709\nbt709", probe("avc.mp4", "pix_fmt,color_space,color_transfer"))
	assert.Contains(t, graph, "[sdr]split=2", "the H.264 rendition and the poster share the SDR branch")

	decisions := map[string]string{}
	for _, o := range res.cmd.ExpectedOutputs {
		if o.Kind == KindVideo {
			decisions[o.Rendition] = o.Attributes[AttrToneMap]
		}
	}
	assert.Equal(t, map[string]string{
		"avc":  "PQ (smpte2084, primaries bt2020) to SDR BT.709 with Hable's curve: h264 renditions do not keep HDR (the spec's tone_map: passthrough)",
		"hevc": "PQ kept (the spec's tone_map: passthrough): 10 bits, transfer smpte2084, primaries bt2020, with its colour description, mastering display, content light level",
		"av1":  "PQ kept (the spec's tone_map: passthrough): 10 bits, transfer smpte2084, primaries bt2020, with its colour description, mastering display, content light level",
	}, decisions)
}

// An HLG input stays HLG in an HEVC rendition; an SDR input under
// passthrough is left alone (nothing to keep, nothing to map).
func TestHDRPassthroughHLGAndSDR(t *testing.T) {
	t.Parallel()
	hlg := conditioningInput(t, "testsrc2=size=320x180:rate=25",
		"-vf", "zscale=tin=bt709:pin=bt709:min=bt709:t=arib-std-b67:p=bt2020:m=bt2020nc,format=yuv420p10le",
		"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc:log-level=error",
		"-color_primaries", "bt2020", "-color_trc", "arib-std-b67", "-colorspace", "bt2020nc")
	spec := encodespec.Spec{
		Renditions:   []encodespec.Rendition{{Name: "hevc", Codec: encodespec.CodecHEVC, Height: 180, BitrateKbps: 300, Preset: "ultrafast"}},
		Packaging:    encodespec.PackagingHLS,
		Conditioning: &encodespec.Conditioning{ToneMap: encodespec.ConditionPassthrough},
	}
	spec.Normalize()
	res := encode(t, spec, hlg)
	assert.Equal(t, "yuv420p10le\narib-std-b67\nbt2020", streamEntry(t, filepath.Join(res.cmd.OutDir, "hevc", "init.mp4"), "pix_fmt,color_transfer,color_primaries"))
	assert.NotContains(t, strings.Join(res.cmd.Args, " "), "tonemap")
	assert.Contains(t, readFile(t, res.cmd.OutDir, "master.m3u8"), "VIDEO-RANGE=HLG")

	plain := makeClip(t, clip{width: 320, height: 180, seconds: 2})
	cmd := plan(t, spec, probeClip(t, plain), plain)
	assert.NotContains(t, strings.Join(cmd.Args, " "), "tonemap")
	assert.NotContains(t, strings.Join(cmd.Args, " "), "yuv420p10le", "an SDR input keeps the rendition's own format")
	assert.Equal(t, "none: transfer unknown", cmd.ExpectedOutputs[1].Attributes[AttrToneMap])
}
