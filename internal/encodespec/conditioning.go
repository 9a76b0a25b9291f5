package encodespec

import (
	"fmt"
	"slices"

	"github.com/mpegflow/mpegflow/internal/validation"
)

// Conditioning says how the decoded input is prepared before it is scaled
// into renditions and images. Every field defaults to "auto": the encoder
// decides from what ffprobe says of the input, and records each decision
// on the job's video outputs. Rotation and non-square pixels are always
// corrected (a player would show them so); they are recorded too.
type Conditioning struct {
	// Deinterlace: "auto" deinterlaces the frames flagged interlaced when
	// the stream's field order says interlaced, "on" deinterlaces every
	// frame, "off" never does.
	Deinterlace string `json:"deinterlace,omitempty"`
	// ToneMap: "auto" maps HDR input (PQ or HLG transfer) to SDR BT.709,
	// "off" keeps the pixel values as they are (without HDR signalling),
	// "passthrough" keeps HDR input HDR in the hevc and av1 renditions (10
	// bits, the input's transfer, primaries and matrix, and its mastering
	// display and content light level where the encoder can write them)
	// and maps it to SDR for the others (h264, vp9) and for the images. A
	// spec with passthrough needs at least one hevc or av1 rendition, and
	// its hevc renditions must be main10 (or leave the profile out).
	ToneMap string `json:"tone_map,omitempty"`
	// FrameRate: "auto" makes a variable or odd frame rate constant at
	// the nearest standard rate (23.976, 24, 25, 29.97, 30, 48, 50, 59.94,
	// 60) within 5 %, "keep" keeps the input's timing.
	FrameRate string `json:"frame_rate,omitempty"`
}

// Conditioning values.
const (
	ConditionAuto = "auto"
	ConditionOn   = "on"
	ConditionOff  = "off"
	ConditionKeep = "keep"
	// ConditionPassthrough keeps HDR in the renditions that can carry it
	// (Conditioning.ToneMap).
	ConditionPassthrough = "passthrough"
)

var (
	deinterlaceModes = []string{ConditionAuto, ConditionOn, ConditionOff}
	toneMapModes     = []string{ConditionAuto, ConditionOff, ConditionPassthrough}
	frameRateModes   = []string{ConditionAuto, ConditionKeep}
)

// Resolved returns c with every empty field "auto"; nil is all "auto".
func (c *Conditioning) Resolved() Conditioning {
	var r Conditioning
	if c != nil {
		r = *c
	}
	if r.Deinterlace == "" {
		r.Deinterlace = ConditionAuto
	}
	if r.ToneMap == "" {
		r.ToneMap = ConditionAuto
	}
	if r.FrameRate == "" {
		r.FrameRate = ConditionAuto
	}
	return r
}

func (c *Conditioning) normalize() {
	*c = c.Resolved()
}

// KeepsHDR reports whether a rendition of codec keeps HDR
// input HDR under tone_map passthrough: hevc and av1 renditions do.
func KeepsHDR(codec string) bool { return codec == CodecHEVC || codec == CodecAV1 }

// validatePassthrough checks what tone_map passthrough needs of the
// renditions: one that keeps HDR, and hevc ones in 10 bits.
func validatePassthrough(errs *validation.Errors, renditions []Rendition) {
	if !slices.ContainsFunc(renditions, func(r Rendition) bool { return KeepsHDR(r.Codec) }) {
		errs.Add("conditioning.tone_map", "passthrough keeps HDR only in hevc or av1 renditions and this spec has none: add one, or use auto to map HDR to SDR")
	}
	for i, r := range renditions {
		if r.Codec == CodecHEVC && r.Profile == "main" {
			errs.Add(fmt.Sprintf("renditions[%d].profile", i), "must be main10 (or left out) with tone_map passthrough: HDR is kept in 10 bits")
		}
	}
}

func (c Conditioning) validate(errs *validation.Errors, path string) {
	for _, f := range []struct {
		name, value string
		allowed     []string
	}{
		{"deinterlace", c.Deinterlace, deinterlaceModes},
		{"tone_map", c.ToneMap, toneMapModes},
		{"frame_rate", c.FrameRate, frameRateModes},
	} {
		if !slices.Contains(f.allowed, f.value) {
			errs.Add(path+"."+f.name, "must be one of %s, got %q", list(f.allowed), f.value)
		}
	}
}
