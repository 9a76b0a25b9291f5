package ffmpeg

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// cea608Pairs are the CEA-608 byte pairs (field 1, channel 1) of a pop-on
// caption reading HELLO: resume caption loading (sent twice, as control
// codes are), the text, end of caption (twice). Every other frame carries
// padding.
var cea608Pairs = [][2]byte{{0x14, 0x20}, {0x14, 0x20}, {'H', 'E'}, {'L', 'L'}, {'O', 0}, {0x14, 0x2F}, {0x14, 0x2F}}

// oddParity sets bit 7 of a 7-bit CEA-608 byte so the byte has an odd
// number of ones.
func oddParity(b byte) byte {
	ones := 0
	for i := range 7 {
		ones += int(b>>i) & 1
	}
	if ones%2 == 0 {
		return b | 0x80
	}
	return b & 0x7f
}

// a53SEI is an H.264 SEI NAL unit (Annex B) carrying one CEA-608 byte
// pair as ATSC A/53 Part 4 caption data: a user_data_registered_itu_t_t35
// message (country 0xB5, provider 0x0031, "GA94", type 3).
func a53SEI(b1, b2 byte) []byte {
	payload := []byte{0xB5, 0x00, 0x31, 'G', 'A', '9', '4', 0x03,
		0x40 | 1, // process_cc_data_flag, cc_count 1
		0xFF,     // em_data
		0xFC,     // marker bits, cc_valid, cc_type 0 (608 field 1)
		b1, b2, 0xFF}
	rbsp := append([]byte{4, byte(len(payload))}, payload...)
	rbsp = append(rbsp, 0x80) // rbsp trailing bits
	nal := []byte{0, 0, 0, 1, 0x06}
	zeros := 0
	for _, b := range rbsp { // emulation prevention
		if zeros >= 2 && b <= 3 {
			nal, zeros = append(nal, 3), 0
		}
		nal = append(nal, b)
		if b == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return nal
}

// captionedInput is a 4 s H.264 MP4 (25 fps) whose video carries a
// CEA-608 caption, HELLO, as A53 SEI in every access unit: FFmpeg has no
// CEA-608 encoder, so the SEI is written here into an Annex B stream whose
// access units FFmpeg delimited (AUD NAL units), then remuxed.
func captionedInput(t *testing.T) string {
	t.Helper()
	ffmpegBin, _ := binaries(t)
	dir := t.TempDir()
	raw := filepath.Join(dir, "plain.h264")
	b, err := exec.Command(ffmpegBin, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=4",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-bsf:v", "h264_metadata=aud=insert", "-f", "h264", raw).CombinedOutput()
	require.NoError(t, err, "%s", b)
	data, err := os.ReadFile(raw)
	require.NoError(t, err)
	aud := []byte{0, 0, 0, 1, 0x09}
	require.True(t, bytes.HasPrefix(data, aud))
	var out bytes.Buffer
	for frame := 0; len(data) > 0; frame++ {
		next := bytes.Index(data[1:], aud)
		au := data
		if next >= 0 {
			au = data[:next+1]
		}
		data = data[len(au):]
		b1, b2 := byte(0x80), byte(0x80)
		if frame < len(cea608Pairs) {
			b1, b2 = oddParity(cea608Pairs[frame][0]), oddParity(cea608Pairs[frame][1])
		}
		out.Write(au[:6]) // the AUD: start code, header, primary_pic_type
		out.Write(a53SEI(b1, b2))
		out.Write(au[6:])
	}
	captioned := filepath.Join(dir, "captioned.h264")
	require.NoError(t, os.WriteFile(captioned, out.Bytes(), 0o644))
	mp4 := filepath.Join(dir, "in.mp4")
	b, err = exec.Command(ffmpegBin, "-nostdin", "-v", "error", "-y", "-r", "25", "-f", "h264", "-i", captioned, "-c", "copy", mp4).CombinedOutput()
	require.NoError(t, err, "%s", b)
	return mp4
}

// closedCaptionText decodes the CEA-608 captions carried in file's video
// (FFmpeg's subcc output of the movie source) as SubRip text.
func closedCaptionText(t *testing.T, file string) string {
	t.Helper()
	ffmpegBin, _ := binaries(t)
	b, err := exec.Command(ffmpegBin, "-nostdin", "-v", "error", "-f", "lavfi", "-i", "movie="+file+"[out+subcc]", "-map", "0:s", "-f", "srt", "-").CombinedOutput()
	require.NoError(t, err, "%s", b)
	return string(b)
}

// TestClosedCaptionsDetected: Probe finds A53 captions in the first frames
// of the video even though ffprobe's stream probe does not decode enough
// to say so, and finds none in a plain clip.
func TestClosedCaptionsDetected(t *testing.T) {
	t.Parallel()
	input := captionedInput(t)
	require.Contains(t, closedCaptionText(t, input), "HELLO", "the generated input carries the caption")
	assert.True(t, probeClip(t, input).ClosedCaptions)
	assert.False(t, probeClip(t, makeClip(t, clip{width: 320, height: 180, seconds: 2})).ClosedCaptions)
}

// TestClosedCaptionsCarried: H.264 renditions carry the input's CEA-608
// captions (decoded back to HELLO from the MP4 file); HEVC renditions
// cannot (FFmpeg 5.1's libx265 writes no A53 data) and say so; a rendition
// whose max_fps drops frames has the caption data removed rather than
// garbled; each decision is recorded; the HLS master declares the caption
// group on the variants that carry it.
func TestClosedCaptionsCarried(t *testing.T) {
	t.Parallel()
	input := captionedInput(t)
	spec := encodespec.Spec{
		Renditions: []encodespec.Rendition{
			{Name: "avc", Codec: encodespec.CodecH264, Height: 180, BitrateKbps: 300, Preset: "ultrafast"},
			{Name: "hevc", Codec: encodespec.CodecHEVC, Height: 180, BitrateKbps: 300, Preset: "ultrafast"},
			{Name: "slow", Codec: encodespec.CodecH264, Height: 120, BitrateKbps: 150, Preset: "ultrafast", MaxFPS: 12.5},
		},
		Packaging: encodespec.PackagingMP4,
	}
	spec.Normalize()
	res := encode(t, spec, input)
	attrs := map[string]string{}
	for _, o := range res.cmd.ExpectedOutputs {
		if o.Kind == KindVideo {
			attrs[o.Rendition] = o.Attributes[AttrClosedCaptions]
		}
	}
	assert.Equal(t, map[string]string{
		"avc":  "carried: CEA-608/708 in A53 SEI, written by libx264",
		"hevc": "not carried: hevc renditions (libx265) have no CEA-608/708 path in FFmpeg 5.1",
		"slow": "not carried: the rendition's max_fps (12.5) drops frames and the caption data they carry",
	}, attrs)
	assert.Contains(t, closedCaptionText(t, filepath.Join(res.cmd.OutDir, "avc.mp4")), "HELLO")
	assert.NotContains(t, closedCaptionText(t, filepath.Join(res.cmd.OutDir, "hevc.mp4")), "HELLO")
	assert.NotContains(t, closedCaptionText(t, filepath.Join(res.cmd.OutDir, "slow.mp4")), "HELLO")
	_, ffprobeBin := binaries(t)
	slow, err := Probe(t.Context(), ffprobeBin, filepath.Join(res.cmd.OutDir, "slow.mp4"))
	require.NoError(t, err)
	assert.False(t, slow.ClosedCaptions, "the caption data was removed, not left garbled")

	hls := spec
	hls.Packaging, hls.SegmentSeconds = encodespec.PackagingHLS, 1
	hls.Normalize()
	res = encode(t, hls, input)
	master := readFile(t, res.cmd.OutDir, "master.m3u8")
	assert.Contains(t, master, `#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="CC1",INSTREAM-ID="CC1",DEFAULT=NO,AUTOSELECT=YES`+"\n")
	assert.Equal(t, 1, strings.Count(master, `CLOSED-CAPTIONS="cc"`), "only the H.264 variant at full rate: %s", master)
	for _, line := range strings.Split(master, "\n") {
		if !strings.HasPrefix(line, "#EXT-X-STREAM-INF") {
			continue
		}
		if strings.Contains(line, `CODECS="avc1`) && strings.Contains(line, "RESOLUTION=320x180") {
			assert.Contains(t, line, `CLOSED-CAPTIONS="cc"`)
		} else {
			assert.NotContains(t, line, "CLOSED-CAPTIONS", "the HEVC and max_fps renditions have none")
		}
	}
}

// DASH declares the captions on the video adaptation set when every
// rendition carries them, and not when one does not.
func TestClosedCaptionsInMPD(t *testing.T) {
	t.Parallel()
	input := captionedInput(t)
	for name, tt := range map[string]struct {
		second encodespec.Rendition
		want   bool
	}{
		"all carry":  {encodespec.Rendition{Codec: encodespec.CodecH264, Height: 120, BitrateKbps: 150, Preset: "ultrafast"}, true},
		"one cannot": {encodespec.Rendition{Codec: encodespec.CodecHEVC, Height: 120, BitrateKbps: 150, Preset: "ultrafast"}, false},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			spec := encodespec.Spec{
				Renditions: []encodespec.Rendition{{Codec: encodespec.CodecH264, Height: 180, BitrateKbps: 300, Preset: "ultrafast"}, tt.second},
				Packaging:  encodespec.PackagingCMAF, SegmentSeconds: 1,
			}
			spec.Normalize()
			res := encode(t, spec, input)
			mpd := readFile(t, res.cmd.OutDir, "manifest.mpd")
			_, err := parseMPD([]byte(mpd))
			require.NoError(t, err, "still a valid MPD")
			if !tt.want {
				assert.NotContains(t, mpd, "cea-608", mpd)
				return
			}
			set := strings.Index(mpd, `contentType="video"`)
			require.Positive(t, set, mpd)
			rest := mpd[set:]
			assert.Equal(t, 1, strings.Count(mpd, ccAccessibility), mpd)
			assert.Less(t, strings.Index(rest, ccAccessibility), strings.Index(rest, "<Representation"), "inside the video set, before its representations: %s", mpd)
		})
	}
}

// Renditions whose codec has no caption path, and inputs whose frame rate
// is normalised, say why the captions are not carried; an input without
// captions gets no decision at all.
func TestClosedCaptionsNotCarried(t *testing.T) {
	t.Parallel()
	input := captionedInput(t)
	in := probeClip(t, input)
	require.True(t, in.ClosedCaptions)
	vp9 := encodespec.Spec{
		Renditions: []encodespec.Rendition{{Codec: encodespec.CodecVP9, Height: 180, BitrateKbps: 300}},
		Packaging:  encodespec.PackagingDASH, SegmentSeconds: 1,
	}
	vp9.Normalize()
	cmd := plan(t, vp9, in, input)
	assert.Equal(t, "not carried: vp9 renditions (libvpx-vp9) have no CEA-608/708 path in FFmpeg 5.1", cmd.ExpectedOutputs[0].Attributes[AttrClosedCaptions])
	assert.Contains(t, strings.Join(cmd.Args, " "), "sidedata=mode=delete:type=A53_CC")

	odd := in
	odd.FrameRate = 29.5
	cmd = plan(t, smallSpec(encodespec.PackagingMP4), odd, input)
	assert.Equal(t, "not carried: the frame rate changes (29.5 to 29.97 fps), which would repeat or drop caption data",
		cmd.ExpectedOutputs[0].Attributes[AttrClosedCaptions])

	plain := makeClip(t, clip{width: 320, height: 180, seconds: 2})
	cmd = plan(t, smallSpec(encodespec.PackagingMP4), probeClip(t, plain), plain)
	assert.NotContains(t, cmd.ExpectedOutputs[0].Attributes, AttrClosedCaptions)
	assert.NotContains(t, strings.Join(cmd.Args, " "), "sidedata")
}
