package encodespec

import (
	"math"

	"github.com/mpegflow/mpegflow/internal/validation"
)

// Limits of Chunking.
const (
	MinChunkSeconds = 10.0
	MaxChunkSeconds = 600.0
	// MaxMinInputSeconds bounds MinInputSeconds (a day).
	MaxMinInputSeconds = 86400.0
	// DefaultChunkCRF is the quality chunked x264/x265 renditions are
	// encoded at under their bitrate cap when Chunking.CRF is 0 (x264's and
	// x265's own defaults are 23 and 28; 23 suits both at ladder rates).
	DefaultChunkCRF = 23
	// MaxChunkCRF is the highest Chunking.CRF (x264's and x265's scale).
	MaxChunkCRF = 51
)

// Chunking splits a long input into chunks of the video that pods of the
// job's pool encode in parallel, each its own Kubernetes Job, then stitches
// their segments into the outputs (docs/design/0028-chunked-encoding.md).
// An input shorter than MinInputSeconds is encoded by one pod as usual.
type Chunking struct {
	// ChunkSeconds is about how long each chunk is (MinChunkSeconds ..
	// MaxChunkSeconds): the planner rounds it to whole segments and moves
	// boundaries towards the input's keyframes.
	ChunkSeconds float64 `json:"chunk_seconds"`
	// MinInputSeconds is the shortest input that is split (0: twice
	// ChunkSeconds, the least that makes two chunks).
	MinInputSeconds float64 `json:"min_input_seconds,omitempty"`
	// CRF is the constant quality every x264/x265 rendition with a
	// bitrate_kbps is encoded at, that bitrate being its cap (0:
	// DefaultChunkCRF). Average-bitrate rate control would start afresh in
	// every chunk and spend its budget differently in each; capped CRF
	// gives every chunk the same quality wherever the cap allows, in a
	// chunked encode and in the one-pod encode of a shorter input alike.
	// Renditions that set crf keep it; other encoders keep their rate
	// control.
	CRF int `json:"crf,omitempty"`
}

// QualityCRF is the CRF of chunked renditions (DefaultChunkCRF when unset).
func (c Chunking) QualityCRF() int {
	if c.CRF > 0 {
		return c.CRF
	}
	return DefaultChunkCRF
}

// Threshold is the shortest input that is split.
func (c Chunking) Threshold() float64 {
	if c.MinInputSeconds > 0 {
		return c.MinInputSeconds
	}
	return 2 * c.ChunkSeconds
}

func (c Chunking) validate(errs *validation.Errors, path string, s Spec) {
	if !(c.ChunkSeconds >= MinChunkSeconds && c.ChunkSeconds <= MaxChunkSeconds) {
		errs.Add(path+".chunk_seconds", "must be %g to %g seconds, got %g", MinChunkSeconds, MaxChunkSeconds, c.ChunkSeconds)
	}
	if math.IsNaN(c.MinInputSeconds) || c.MinInputSeconds < 0 || c.MinInputSeconds > MaxMinInputSeconds {
		errs.Add(path+".min_input_seconds", "must be 0 (twice chunk_seconds) to %g seconds, got %g", MaxMinInputSeconds, c.MinInputSeconds)
	}
	if c.CRF < 0 || c.CRF > MaxChunkCRF {
		errs.Add(path+".crf", "must be 0 (%d) to %d, got %d", DefaultChunkCRF, MaxChunkCRF, c.CRF)
	}
	switch {
	case len(s.Renditions) == 0:
		errs.Add(path, "chunking splits the video renditions; this spec has none")
	case s.Encryption != nil:
		errs.Add(path, "chunked encoding does not encrypt yet; omit chunking or encryption")
	case s.Ladder.PerTitle():
		errs.Add(path, "chunked encoding does not choose a per-title ladder yet; omit chunking or use the fixed ladder")
	}
}
