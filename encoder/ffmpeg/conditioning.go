package ffmpeg

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// Attributes that record on every video output how the input was
// prepared (see conditioning).
const (
	AttrDeinterlace = "conditioning.deinterlace"
	AttrToneMap     = "conditioning.tone_map"
	AttrFrameRate   = "conditioning.frame_rate"
	AttrRotation    = "conditioning.rotation"
	AttrPixelAspect = "conditioning.pixel_aspect"
)

// standardRates are the frame rates "auto" normalises to.
var standardRates = []struct {
	num, den int
}{{24000, 1001}, {24, 1}, {25, 1}, {30000, 1001}, {30, 1}, {48, 1}, {50, 1}, {60000, 1001}, {60, 1}}

// hdrTransfers are the transfer characteristics of HDR video, as ffprobe
// names them.
var hdrTransfers = map[string]string{"smpte2084": "PQ", "arib-std-b67": "HLG"}

// toneMapChain maps HDR to SDR BT.709: to linear light, to BT.709
// primaries, Hable's curve without desaturation, back to BT.709's
// transfer and matrix in limited range.
const toneMapChain = "zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap=tonemap=hable:desat=0," +
	"zscale=t=bt709:m=bt709:r=tv,format=yuv420p"

// conditioning is how the decoded input is prepared before the split into
// renditions and images.
type conditioning struct {
	chain string  // filters, in order; "" for none
	fps   float64 // the frame rate after them; 0 if unknown
	tonal bool    // HDR was mapped to SDR BT.709
	// passthrough: HDR input under tone_map passthrough; the renditions
	// that can keep HDR do, the other branches are mapped to SDR.
	passthrough bool
	attrs       map[string]string // every decision, in words
}

// condition decides, from the spec's overrides and the probed input,
// whether to deinterlace, tone map and normalise the frame rate, and
// records each decision, the ones not to act included. Rotation and
// non-square pixels are corrected by every encode (FFmpeg autorotates; the
// renditions are scaled from the displayed size with square pixels); they
// are recorded when the input has them.
func condition(spec *encodespec.Conditioning, in MediaInfo) conditioning {
	c := spec.Resolved()
	out := conditioning{fps: in.FrameRate, attrs: map[string]string{}}
	var filters []string

	interlaced := in.Interlaced()
	order := in.FieldOrder
	if order == "" {
		order = "unknown"
	}
	switch {
	case c.Deinterlace == encodespec.ConditionOn:
		filters = append(filters, "bwdif=mode=send_frame:parity=auto:deint=all")
		out.attrs[AttrDeinterlace] = "bwdif on every frame (the spec's deinterlace: on); field order " + order
	case c.Deinterlace == encodespec.ConditionOff:
		out.attrs[AttrDeinterlace] = "none (the spec's deinterlace: off); field order " + order
	case interlaced:
		filters = append(filters, "bwdif=mode=send_frame:parity=auto:deint=interlaced")
		out.attrs[AttrDeinterlace] = "bwdif on the frames flagged interlaced; field order " + order
	case in.DetectedFieldOrder == "tt" || in.DetectedFieldOrder == "bb":
		parity := map[string]string{"tt": "tff", "bb": "bff"}[in.DetectedFieldOrder]
		filters = append(filters, "bwdif=mode=send_frame:parity="+parity+":deint=all")
		out.attrs[AttrDeinterlace] = fmt.Sprintf("bwdif on every frame, %s: idet found interlaced pictures although the field order says %s", parity, order)
	case in.DetectedFieldOrder == "progressive":
		out.attrs[AttrDeinterlace] = "none: field order " + order + ", and idet found progressive pictures"
	default:
		out.attrs[AttrDeinterlace] = "none: field order " + order
	}

	hdr, isHDR := hdrTransfers[in.ColorTransfer]
	transfer := in.ColorTransfer
	if transfer == "" {
		transfer = "unknown"
	}
	switch {
	case isHDR && c.ToneMap == encodespec.ConditionOff:
		out.attrs[AttrToneMap] = fmt.Sprintf("none (the spec's tone_map: off); the %s input's values are kept", hdr)
	case isHDR && c.ToneMap == encodespec.ConditionPassthrough:
		// Each branch decides (see graph): HDR renditions keep it, the
		// others and the images are mapped to SDR.
		out.passthrough = true
		out.attrs[AttrToneMap] = fmt.Sprintf("%s (%s, primaries %s) kept in hevc and av1 renditions, mapped to SDR BT.709 for the others (the spec's tone_map: passthrough)",
			hdr, in.ColorTransfer, in.ColorPrimaries)
	case isHDR:
		filters = append(filters, toneMapChain)
		out.tonal = true
		out.attrs[AttrToneMap] = fmt.Sprintf("%s (%s, primaries %s) to SDR BT.709 with Hable's curve", hdr, in.ColorTransfer, in.ColorPrimaries)
	default:
		out.attrs[AttrToneMap] = "none: transfer " + transfer
	}

	switch rate, odd, near := standardRate(in.FrameRate); {
	case in.FrameRate <= 0:
		out.attrs[AttrFrameRate] = "unchanged: the input's frame rate is unknown"
	case c.FrameRate == encodespec.ConditionKeep:
		out.attrs[AttrFrameRate] = fmt.Sprintf("unchanged (the spec's frame_rate: keep): %s fps%s", formatRate(in.FrameRate), variable(in))
	case !in.VariableFrameRate && !odd:
		out.attrs[AttrFrameRate] = fmt.Sprintf("unchanged: %s fps constant", formatRate(in.FrameRate))
	case !near:
		out.attrs[AttrFrameRate] = fmt.Sprintf("unchanged: %s fps%s is not within 5 %% of a standard rate", formatRate(in.FrameRate), variable(in))
	default:
		filters = append(filters, fmt.Sprintf("fps=fps=%d/%d", rate.num, rate.den))
		out.fps = float64(rate.num) / float64(rate.den)
		out.attrs[AttrFrameRate] = fmt.Sprintf("%s fps%s to %s fps constant", formatRate(in.FrameRate), variable(in), formatRate(out.fps))
	}

	if in.Rotation != 0 {
		out.attrs[AttrRotation] = fmt.Sprintf("rotated %d° as the input's display matrix says", in.Rotation)
	}
	if in.PixelAspect != "" {
		out.attrs[AttrPixelAspect] = fmt.Sprintf("pixels of aspect %s scaled to square (%dx%d as displayed)", in.PixelAspect, in.Width, in.Height)
	}
	out.chain = strings.Join(filters, ",")
	return out
}

// standardRate returns the standard rate nearest to fps, whether fps is
// odd (more than 0.1 % from it) and whether it is near (within 5 %).
func standardRate(fps float64) (rate struct{ num, den int }, odd, near bool) {
	best := math.Inf(1)
	for _, r := range standardRates {
		if d := math.Abs(fps-float64(r.num)/float64(r.den)) / (float64(r.num) / float64(r.den)); d < best {
			best, rate = d, r
		}
	}
	return rate, best > 0.001, best <= 0.05
}

func variable(in MediaInfo) string {
	if in.VariableFrameRate {
		return " (variable)"
	}
	return ""
}

// formatRate prints a frame rate with at most three decimals (29.97).
func formatRate(fps float64) string {
	return formatFloat(math.Round(fps*1000) / 1000)
}

// Interlaced reports whether the stream's field order says interlaced.
func (in MediaInfo) Interlaced() bool {
	return slices.Contains([]string{"tt", "bb", "tb", "bt"}, in.FieldOrder)
}
