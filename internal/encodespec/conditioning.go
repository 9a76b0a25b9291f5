package encodespec

import (
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
	// "off" keeps the pixel values as they are.
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
)

var (
	deinterlaceModes = []string{ConditionAuto, ConditionOn, ConditionOff}
	toneMapModes     = []string{ConditionAuto, ConditionOff}
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
