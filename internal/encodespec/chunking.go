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
	switch {
	case len(s.Renditions) == 0:
		errs.Add(path, "chunking splits the video renditions; this spec has none")
	case s.Encryption != nil:
		errs.Add(path, "chunked encoding does not encrypt yet; omit chunking or encryption")
	case s.Ladder.PerTitle():
		errs.Add(path, "chunked encoding does not choose a per-title ladder yet; omit chunking or use the fixed ladder")
	}
}
