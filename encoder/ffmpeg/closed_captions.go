package ffmpeg

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// AttrClosedCaptions records on every video output of an input that
// carries CEA-608/708 captions in its video (A53 side data) whether the
// rendition carries them on, and why not when it does not.
const AttrClosedCaptions = "closed_captions"

// ccGroup is the HLS master playlist's closed-caption group.
const ccGroup = "cc"

// ccScanFrames is how many frames of the video are decoded to look for
// A53 captions: a broadcast stream carries caption data (at least padding)
// with every frame, so a few seconds tell.
const ccScanFrames = 120

// ccCodecs are the input video codecs whose decoders export A53 captions
// as frame side data in FFmpeg 5.1.
var ccCodecs = []string{"h264", "hevc", "mpeg2video"}

// ccEncoders are the encoders that write A53 side data of their input
// frames into the bitstream as SEI: libx264 and the NVENC encoders, with
// their a53cc option (on by default). FFmpeg 5.1's libx265 wrapper does
// not (measured: no A53 side data in its output), nor do the AV1 and VP9
// encoders. The NVENC encoders are taken at their documentation's word:
// no GPU was at hand to measure them.
var ccEncoders = []string{"libx264", "h264_nvenc", "hevc_nvenc"}

// a53Side is ffprobe's name for A53 caption frame side data.
const a53Side = "ATSC A53 Part 4 Closed Captions"

// detectClosedCaptions reports whether the video stream carries CEA-608/708
// captions: ffprobe says so of the stream (it does when its probe decoded a
// frame with captions), or one of the first ccScanFrames decoded frames has
// A53 side data. Only codecs whose decoders export A53 data are scanned.
func detectClosedCaptions(ctx context.Context, ffprobe string, open []string, url, codec string, said bool) (bool, error) {
	if said {
		return true, nil
	}
	if !slices.Contains(ccCodecs, codec) {
		return false, nil
	}
	var stdout bytes.Buffer
	args := append([]string{"-v", "error"}, open...)
	args = append(args, "-select_streams", "V:0", "-read_intervals", "%+#"+strconv.Itoa(ccScanFrames),
		"-show_entries", "frame_side_data=side_data_type", "-of", "csv=p=0", url)
	if err := runProbe(ctx, ffprobe, &stdout, url, args...); err != nil {
		return false, err
	}
	return bytes.Contains(stdout.Bytes(), []byte(a53Side)), nil
}

// closedCaptions decides, for a rendition of an input with CEA-608/708
// captions, whether the captions are carried on, and records the decision
// in words. They are carried only when the encoder writes A53 side data
// and every source frame reaches the encoder once: a frame rate change
// (normalisation, or the rendition's max_fps) drops or repeats frames and
// with them caption bytes, which garbles the captions, so the side data is
// then removed (drop is true: the rendition's chain deletes it).
func (p *planner) closedCaptions(pr plannedRendition, capFPS bool) (attr string, drop bool) {
	enc := pr.encoder.Encoder
	switch {
	case !slices.Contains(ccEncoders, enc):
		return fmt.Sprintf("not carried: %s renditions (%s) have no CEA-608/708 path in FFmpeg 5.1", pr.r.Codec, enc), true
	case p.cond.fps != p.sourceFPS && p.sourceFPS > 0:
		return fmt.Sprintf("not carried: the frame rate changes (%s to %s fps), which would repeat or drop caption data",
			formatRate(p.sourceFPS), formatRate(p.cond.fps)), true
	case capFPS:
		return fmt.Sprintf("not carried: the rendition's max_fps (%s) drops frames and the caption data they carry", formatFloat(pr.r.MaxFPS)), true
	}
	return "carried: CEA-608/708 in A53 SEI, written by " + enc, false
}

// carriesClosedCaptions reports whether a video output's attributes say
// its rendition carries the input's closed captions.
func carriesClosedCaptions(o Output) bool {
	return strings.HasPrefix(o.Attributes[AttrClosedCaptions], "carried")
}

// ccAccessibility declares CEA-608 channel 1 captions in an MPD adaptation
// set (SCTE 214-1's scheme).
const ccAccessibility = `<Accessibility schemeIdUri="urn:scte:dash:cc:cea-608:2015" value="CC1"/>`

// declareClosedCaptions adds, after FFmpeg, the closed-caption descriptor
// to the MPD's video adaptation set when every video rendition carries the
// input's captions: the descriptor speaks for the whole set, so a set
// with a rendition that lost them gets none.
func declareClosedCaptions(cmd Command) error {
	if !cmd.expects(dashManifest) {
		return nil
	}
	videos, carrying := 0, 0
	for _, o := range cmd.ExpectedOutputs {
		if o.Kind == KindVideo {
			videos++
			if carriesClosedCaptions(o) {
				carrying++
			}
		}
	}
	if videos == 0 || carrying < videos {
		return nil
	}
	file := filepath.Join(cmd.OutDir, dashManifest)
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("declare closed captions in %s: %w", dashManifest, err)
	}
	set := bytes.Index(data, []byte(`contentType="video"`))
	end := -1
	if set >= 0 {
		end = bytes.IndexByte(data[set:], '>')
	}
	if end < 0 {
		return fmt.Errorf("declare closed captions in %s: no video adaptation set", dashManifest)
	}
	at := set + end + 1
	out := slices.Concat(data[:at], []byte("\n\t\t\t"+ccAccessibility), data[at:])
	if err := writeAtomically(file, out); err != nil {
		return fmt.Errorf("declare closed captions in %s: %w", dashManifest, err)
	}
	return nil
}
