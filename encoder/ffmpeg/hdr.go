package ffmpeg

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strings"

	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// MasteringDisplay is SMPTE ST 2086 metadata: the primaries and white
// point of the display the video was graded on, as CIE 1931 xy
// chromaticities, and its luminance range in cd/m².
type MasteringDisplay struct {
	RedX, RedY, GreenX, GreenY, BlueX, BlueY, WhiteX, WhiteY float64
	MaxLuminance, MinLuminance                               float64
}

// ContentLight is CTA-861.3 content light level metadata, in cd/m².
type ContentLight struct {
	MaxCLL, MaxFALL int
}

// hdrSideData reads the first frame's HDR side data (mastering display,
// content light level): FFmpeg's decoders export it from the bitstream
// (HEVC SEI, AV1 metadata OBUs) on frames, where containers that do not
// carry it in their own boxes leave it.
func hdrSideData(ctx context.Context, ffprobe string, open []string, url string) (*MasteringDisplay, *ContentLight, error) {
	var stdout bytes.Buffer
	args := append([]string{"-v", "error"}, open...)
	args = append(args, "-select_streams", "V:0", "-read_intervals", "%+#1", "-show_frames", "-show_entries", "frame_side_data", "-of", "json", url)
	if err := runProbe(ctx, ffprobe, &stdout, url, args...); err != nil {
		return nil, nil, err
	}
	var out struct {
		Frames []struct {
			SideData []map[string]any `json:"side_data_list"`
		} `json:"frames"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return nil, nil, fmt.Errorf("probe HDR side data: %w", err)
	}
	var md *MasteringDisplay
	var cl *ContentLight
	for _, f := range out.Frames {
		for _, sd := range f.SideData {
			switch sd["side_data_type"] {
			case "Mastering display metadata":
				m := MasteringDisplay{}
				ok := true
				for key, dst := range map[string]*float64{
					"red_x": &m.RedX, "red_y": &m.RedY, "green_x": &m.GreenX, "green_y": &m.GreenY, "blue_x": &m.BlueX, "blue_y": &m.BlueY,
					"white_point_x": &m.WhiteX, "white_point_y": &m.WhiteY, "max_luminance": &m.MaxLuminance, "min_luminance": &m.MinLuminance,
				} {
					v, good := rational(sd[key])
					*dst, ok = v, ok && good
				}
				if ok && m.MaxLuminance > 0 {
					md = &m
				}
			case "Content light level metadata":
				maxCLL, ok1 := sd["max_content"].(float64)
				maxFALL, ok2 := sd["max_average"].(float64)
				if ok1 && ok2 && maxCLL > 0 {
					cl = &ContentLight{MaxCLL: int(maxCLL), MaxFALL: int(maxFALL)}
				}
			}
		}
	}
	return md, cl, nil
}

// rational parses ffprobe's "num/den" (or a plain number) as a float.
func rational(v any) (float64, bool) {
	s, ok := v.(string)
	if !ok {
		return 0, false
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, false
	}
	f, _ := r.Float64()
	return f, !math.IsNaN(f) && !math.IsInf(f, 0)
}

// x265 writes ST 2086 in units of 0.00002 (chromaticity) and 0.0001 cd/m².
func (m MasteringDisplay) x265() string {
	c := func(v float64) int { return int(math.Round(v * 50000)) }
	return fmt.Sprintf("G(%d,%d)B(%d,%d)R(%d,%d)WP(%d,%d)L(%d,%d)", c(m.GreenX), c(m.GreenY), c(m.BlueX), c(m.BlueY),
		c(m.RedX), c(m.RedY), c(m.WhiteX), c(m.WhiteY), int(math.Round(m.MaxLuminance*10000)), int(math.Round(m.MinLuminance*10000)))
}

// svtav1 is the same in SVT-AV1's notation: plain decimals.
func (m MasteringDisplay) svtav1() string {
	f := func(v float64) string { return formatFloat(math.Round(v*100000) / 100000) }
	return fmt.Sprintf("G(%s,%s)B(%s,%s)R(%s,%s)WP(%s,%s)L(%s,%s)", f(m.GreenX), f(m.GreenY), f(m.BlueX), f(m.BlueY),
		f(m.RedX), f(m.RedY), f(m.WhiteX), f(m.WhiteY), f(m.MaxLuminance), f(m.MinLuminance))
}

// hdrKept reports whether the rendition keeps the input's HDR: tone_map
// passthrough of an HDR input, and a codec that carries HDR.
func (p *planner) hdrKept(r encodespec.Rendition) bool {
	return p.cond.passthrough && encodespec.KeepsHDR(r.Codec)
}

// hdrArgs are the encoder options that signal the input's HDR in a
// rendition that keeps it (s is its stream specifier): the colour
// description for every encoder, and the mastering display and content
// light level for those FFmpeg 5.1 lets us give them to (x265 and
// SVT-AV1, through their own parameters). x265 is also told the stream is
// HDR10 when the transfer is PQ. x265 are parameters to add to the x265
// parameters videoArgs chooses; carried names the metadata written.
func hdrArgs(in MediaInfo, encoder, s string) (args, x265 []string, carried []string) {
	known := func(v string) bool { return v != "" && v != "unknown" && v != "reserved" }
	args = []string{"-color_trc" + s, in.ColorTransfer} // an HDR transfer, or the rendition would not keep HDR
	if known(in.ColorPrimaries) {
		args = append(args, "-color_primaries"+s, in.ColorPrimaries)
	}
	if known(in.ColorSpace) {
		args = append(args, "-colorspace"+s, in.ColorSpace)
	}
	switch encoder {
	case "libx265":
		if in.ColorTransfer == "smpte2084" {
			x265 = append(x265, "hdr10=1")
		}
		if in.Mastering != nil {
			x265 = append(x265, "master-display="+in.Mastering.x265())
			carried = append(carried, "mastering display")
		}
		if in.ContentLight != nil {
			x265 = append(x265, fmt.Sprintf("max-cll=%d,%d", in.ContentLight.MaxCLL, in.ContentLight.MaxFALL))
			carried = append(carried, "content light level")
		}
	case "libsvtav1":
		var params []string
		if in.Mastering != nil {
			params = append(params, "mastering-display="+in.Mastering.svtav1())
			carried = append(carried, "mastering display")
		}
		if in.ContentLight != nil {
			params = append(params, fmt.Sprintf("content-light=%d,%d", in.ContentLight.MaxCLL, in.ContentLight.MaxFALL))
			carried = append(carried, "content light level")
		}
		if len(params) > 0 {
			args = append(args, "-svtav1-params"+s, strings.Join(params, ":"))
		}
	}
	return args, x265, carried
}

// toneMapDecision is a rendition's tone-mapping decision in words under
// tone_map passthrough of an HDR input.
func (p *planner) toneMapDecision(pr plannedRendition) string {
	kind, in := hdrTransfers[p.in.ColorTransfer], p.in
	if pr.hdr == nil {
		return fmt.Sprintf("%s (%s, primaries %s) to SDR BT.709 with Hable's curve: %s renditions do not keep HDR (the spec's tone_map: passthrough)",
			kind, in.ColorTransfer, in.ColorPrimaries, pr.r.Codec)
	}
	_, _, carried := hdrArgs(in, pr.encoder.Encoder, "")
	meta := "colour description"
	if len(carried) > 0 {
		meta += ", " + strings.Join(carried, ", ")
	}
	missing := ""
	if len(carried) == 0 && (in.Mastering != nil || in.ContentLight != nil) {
		missing = fmt.Sprintf("; %s cannot be given the input's mastering display or content light level in FFmpeg 5.1", pr.encoder.Encoder)
	}
	return fmt.Sprintf("%s kept (the spec's tone_map: passthrough): 10 bits, transfer %s, primaries %s, with its %s%s",
		kind, in.ColorTransfer, in.ColorPrimaries, meta, missing)
}

// videoRange is the HLS VIDEO-RANGE of a variant that keeps HDR (PQ or
// HLG), from its tone-mapping decision; "" for SDR variants, which leave
// the attribute at its default.
func videoRange(o Output) string {
	for _, r := range []string{"PQ", "HLG"} {
		if strings.HasPrefix(o.Attributes[AttrToneMap], r+" kept") {
			return r
		}
	}
	return ""
}
