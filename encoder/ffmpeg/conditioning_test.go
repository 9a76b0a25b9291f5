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

// conditioningInput makes a 2 s input with FFmpeg from a lavfi source and
// output arguments.
func conditioningInput(t *testing.T, source string, args ...string) string {
	t.Helper()
	ffmpegBin, _ := binaries(t)
	out := filepath.Join(t.TempDir(), "in.mp4")
	all := append([]string{"-nostdin", "-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i", source, "-t", "2"}, args...)
	b, err := exec.Command(ffmpegBin, append(all, out)...).CombinedOutput()
	require.NoError(t, err, "%s", b)
	return out
}

// streamEntry is one entry of ffprobe's first video stream.
func streamEntry(t *testing.T, file, entry string) string {
	t.Helper()
	_, ffprobeBin := binaries(t)
	b, err := exec.Command(ffprobeBin, "-v", "error", "-select_streams", "v:0", "-show_entries", "stream="+entry,
		"-of", "default=noprint_wrappers=1:nokey=1", file).CombinedOutput()
	require.NoError(t, err, "%s", b)
	return strings.TrimSpace(string(b))
}

// TestConditioning encodes inputs that need preparing (interlaced, HDR
// PQ, an odd frame rate), with the decisions left to the encoder and
// overridden by the spec, and checks the outputs with ffprobe and the
// decisions recorded on every video output.
func TestConditioning(t *testing.T) {
	t.Parallel()
	interlaced := func(t *testing.T) string {
		return conditioningInput(t, "testsrc2=size=320x240:rate=50", "-vf", "tinterlace=mode=interleave_top,setfield=tff",
			"-c:v", "libx264", "-flags", "+ilme+ildct", "-x264-params", "tff=1", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
	}
	hdr := func(t *testing.T) string {
		return conditioningInput(t, "testsrc2=size=320x180:rate=25",
			"-vf", "zscale=tin=bt709:pin=bt709:min=bt709:t=smpte2084:p=bt2020:m=bt2020nc,format=yuv420p10le",
			"-c:v", "libx265", "-x265-params", "colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:log-level=error",
			"-preset", "ultrafast", "-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc")
	}
	odd := func(t *testing.T) string {
		return conditioningInput(t, "testsrc2=size=320x180:rate=29.5", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
	}
	plain := func(t *testing.T) string {
		return conditioningInput(t, "testsrc2=size=320x180:rate=25", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
	}
	tests := map[string]struct {
		input      func(t *testing.T) string
		override   *encodespec.Conditioning
		filter     string // in the filter graph, or
		noFilter   string // not in it
		attr, want string // a recorded decision begins with want
		entry, is  string // an ffprobe stream entry of the output and its value
	}{
		"interlaced is deinterlaced": {input: interlaced, filter: "bwdif=mode=send_frame:parity=auto:deint=interlaced",
			attr: AttrDeinterlace, want: "bwdif on the frames flagged interlaced; field order tt", entry: "field_order", is: "progressive"},
		"deinterlace off": {input: interlaced, override: &encodespec.Conditioning{Deinterlace: "off"}, noFilter: "bwdif",
			attr: AttrDeinterlace, want: "none (the spec's deinterlace: off); field order tt"},
		"deinterlace on for a progressive input": {input: plain, override: &encodespec.Conditioning{Deinterlace: "on"},
			filter: "bwdif=mode=send_frame:parity=auto:deint=all", attr: AttrDeinterlace, want: "bwdif on every frame"},
		"PQ is tone mapped": {input: hdr, filter: "tonemap=tonemap=hable", attr: AttrToneMap,
			want: "PQ (smpte2084, primaries bt2020) to SDR BT.709", entry: "color_transfer", is: "bt709"},
		"tone mapping off": {input: hdr, override: &encodespec.Conditioning{ToneMap: "off"}, noFilter: "tonemap",
			attr: AttrToneMap, want: "none (the spec's tone_map: off); the PQ input's values are kept"},
		"odd rate to the nearest standard": {input: odd, filter: "fps=fps=30000/1001", attr: AttrFrameRate,
			want: "29.5 fps to 29.97 fps constant", entry: "avg_frame_rate", is: "30000/1001"},
		"odd rate kept": {input: odd, override: &encodespec.Conditioning{FrameRate: "keep"}, noFilter: "fps=",
			attr: AttrFrameRate, want: "unchanged (the spec's frame_rate: keep): 29.5 fps", entry: "avg_frame_rate", is: "59/2"},
		"a plain input is left alone": {input: plain, noFilter: "conditioned", attr: AttrFrameRate, want: "unchanged: 25 fps constant"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			spec := smallSpec(encodespec.PackagingMP4)
			spec.Conditioning = tt.override
			spec.Normalize()
			require.NoError(t, spec.Validate())
			res := encode(t, spec, tt.input(t))
			graph := strings.Join(res.cmd.Args, " ")
			if tt.filter != "" {
				assert.Contains(t, graph, tt.filter)
			}
			if tt.noFilter != "" {
				assert.NotContains(t, graph, tt.noFilter)
			}
			videos := 0
			for _, o := range res.outputs {
				if o.Kind != KindVideo {
					continue
				}
				videos++
				assert.True(t, strings.HasPrefix(o.Attributes[tt.attr], tt.want), "%s of %s: %q, want it to begin %q", tt.attr, o.Name, o.Attributes[tt.attr], tt.want)
				for _, key := range []string{AttrDeinterlace, AttrToneMap, AttrFrameRate} {
					assert.NotEmpty(t, o.Attributes[key], "every decision is recorded: %s on %s", key, o.Name)
				}
				if tt.entry != "" {
					assert.Equal(t, tt.is, streamEntry(t, filepath.Join(res.cmd.OutDir, o.Name), tt.entry), "%s of %s", tt.entry, o.Name)
				}
			}
			assert.Equal(t, 2, videos, "two renditions")
		})
	}
}

// Overrides are checked like every other field.
func TestConditioningValidation(t *testing.T) {
	t.Parallel()
	spec := smallSpec(encodespec.PackagingMP4)
	spec.Conditioning = &encodespec.Conditioning{Deinterlace: "yadif", ToneMap: "on", FrameRate: "60"}
	err := spec.Validate()
	require.Error(t, err)
	for _, want := range []string{"conditioning.deinterlace", "conditioning.tone_map", "conditioning.frame_rate"} {
		assert.ErrorContains(t, err, want)
	}
}

// TestDetectFieldOrder: idet finds interlaced pictures, and their parity,
// in streams that do not say their field order (MJPEG in AVI), and none in
// progressive ones; the planner then deinterlaces every frame with the
// found parity.
func TestDetectFieldOrder(t *testing.T) {
	t.Parallel()
	ffmpegBin, ffprobeBin := binaries(t)
	avi := func(filter string) string {
		out := filepath.Join(t.TempDir(), "in.avi")
		args := []string{"-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=50", "-t", "2"}
		if filter != "" {
			args = append(args, "-vf", filter)
		}
		b, err := exec.Command(ffmpegBin, append(args, "-c:v", "mjpeg", "-q:v", "3", out)...).CombinedOutput()
		require.NoError(t, err, "%s", b)
		return out
	}
	for name, tt := range map[string]struct {
		file string
		want []string
	}{
		"interlaced, top field first":    {avi("tinterlace=mode=interleave_top"), []string{"tt"}},
		"interlaced, bottom field first": {avi("tinterlace=mode=interleave_bottom"), []string{"bb"}},
		"progressive":                    {avi(""), []string{"progressive", ""}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in := probeClip(t, tt.file)
			require.False(t, in.Interlaced(), "the stream does not say: %q", in.FieldOrder)
			got, err := DetectFieldOrder(t.Context(), ffmpegBin, tt.file, in)
			require.NoError(t, err)
			assert.Contains(t, tt.want, got)
		})
	}

	file := avi("tinterlace=mode=interleave_bottom")
	in := probeClip(t, file)
	var err error
	in.DetectedFieldOrder, err = DetectFieldOrder(t.Context(), ffmpegBin, file, in)
	require.NoError(t, err)
	cmd := plan(t, smallSpec(encodespec.PackagingMP4), in, file)
	assert.Contains(t, strings.Join(cmd.Args, " "), "bwdif=mode=send_frame:parity=bff:deint=all")
	require.NoError(t, Run(t.Context(), ffmpegBin, cmd, in.DurationSeconds, func(float64) {}))
	outputs, err := Collect(cmd)
	require.NoError(t, err)
	require.NoError(t, Verify(t.Context(), ffprobeBin, cmd, outputs, in))
	for _, o := range outputs {
		if o.Kind == KindVideo {
			assert.True(t, strings.HasPrefix(o.Attributes[AttrDeinterlace], "bwdif on every frame, bff: idet found interlaced pictures"), o.Attributes[AttrDeinterlace])
		}
	}
}
