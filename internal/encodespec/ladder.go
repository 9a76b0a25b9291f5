package encodespec

import (
	"fmt"
	"slices"

	"github.com/mpegflow/mpegflow/internal/validation"
)

// Ladder says how the renditions' bitrates are chosen. With mode "fixed"
// (the default, and what a spec without a ladder gets) every rendition is
// encoded at its own bitrate_kbps. With "per_title" the encoder first
// probes the input: it encodes a few short sampled windows at constant
// quality at each rendition's size and finds the quality factor at which
// each reaches TargetPSNRDB; the rendition is encoded at that quality,
// capped at its bitrate_kbps, which becomes a ceiling. A rendition that
// would not be at least 20 % cheaper than the next larger one kept is
// dropped (the largest is always kept). The choices and the reasons are
// recorded on the job's video outputs.
type Ladder struct {
	// Mode is "fixed" or "per_title".
	Mode string `json:"mode,omitempty"`
	// TargetPSNRDB is the quality each per_title rendition is encoded to
	// reach, as the PSNR in dB of the rendition against the source scaled
	// to its size (30..80, default 42). Only for per_title.
	TargetPSNRDB float64 `json:"target_psnr_db,omitempty"`
}

// Ladder modes.
const (
	LadderFixed    = "fixed"
	LadderPerTitle = "per_title"
)

// Per-title quality target: the default and the accepted range. Below 30 dB
// a picture is visibly damaged. Past about 50 dB differences are invisible,
// but targets up to 80 dB are accepted so that a per-title ladder can be
// held to the measured quality of an existing encode (a fixed ladder
// spends its bits on easy content until it is near lossless).
const (
	DefaultTargetPSNRDB = 42.0
	MinTargetPSNRDB     = 30.0
	MaxTargetPSNRDB     = 80.0
)

var ladderModes = []string{LadderFixed, LadderPerTitle}

// PerTitle reports whether the ladder asks for per-title bitrates; a nil
// ladder is fixed.
func (l *Ladder) PerTitle() bool { return l != nil && l.Mode == LadderPerTitle }

func (l *Ladder) normalize() {
	if l.Mode == "" {
		l.Mode = LadderFixed
	}
	if l.Mode == LadderPerTitle && l.TargetPSNRDB == 0 {
		l.TargetPSNRDB = DefaultTargetPSNRDB
	}
}

func (l Ladder) validate(errs *validation.Errors, path string, renditions []Rendition) {
	if !slices.Contains(ladderModes, l.Mode) {
		errs.Add(path+".mode", "must be one of %s, got %q", list(ladderModes), l.Mode)
		return
	}
	if l.Mode != LadderPerTitle {
		if l.TargetPSNRDB != 0 {
			errs.Add(path+".target_psnr_db", "applies only to mode %q; omit it or set mode %q", LadderPerTitle, LadderPerTitle)
		}
		return
	}
	if !inRange(l.TargetPSNRDB, MinTargetPSNRDB, MaxTargetPSNRDB) {
		errs.Add(path+".target_psnr_db", "must be from %g to %g dB, got %g", MinTargetPSNRDB, MaxTargetPSNRDB, l.TargetPSNRDB)
	}
	if len(renditions) == 0 {
		errs.Add(path+".mode", "per_title needs at least one rendition; omit ladder for a spec of images only")
	}
	for i, r := range renditions {
		// The probe encodes with x264, so its bitrates hold for h264 only.
		if r.Codec != CodecH264 && r.Codec != "" {
			errs.Add(fmt.Sprintf("renditions[%d].codec", i), "must be h264 with ladder mode per_title (the analysis probes with x264), got %q", r.Codec)
		}
		if r.BitrateKbps == 0 && r.CRF != nil {
			errs.Add(fmt.Sprintf("renditions[%d].crf", i), "ladder mode per_title needs bitrate_kbps (%d to %d) instead of crf: it is the rendition's ceiling", minVideoKbps, maxVideoKbps)
		}
	}
}
