package coordinatorv1

import (
	"path"
	"strings"
)

// Values of Job.task: what a claimed unit of work is
// (docs/design/0028-chunked-encoding.md). An empty task is TaskJob.
const (
	// TaskJob is a job as submitted: encode it, or Split it.
	TaskJob = "job"
	// TaskChunk encodes Job.chunk's range of every video rendition.
	TaskChunk = "chunk"
	// TaskWhole encodes what a split job makes over the whole input:
	// audio, subtitles and images.
	TaskWhole = "whole"
	// TaskStitch writes the manifests over Job.parts and publishes the
	// job's outputs.
	TaskStitch = "stitch"
)

// IsMediaSegment reports whether a chunk or whole-input task's output file
// named name is a media segment ("<rendition>/seg_NNNNN.m4s", or the DASH
// layout's "seg_<i>_NNNNN.m4s"). Those carry their final names and are
// stored at the job's own output keys, where the stitch task leaves them;
// the task's other files (init segments, its playlists, its ledger) are
// kept under the job's tasks/ prefix for the stitch task to read.
func IsMediaSegment(name string) bool {
	base := path.Base(name)
	return strings.HasPrefix(base, "seg_") && strings.HasSuffix(base, ".m4s")
}
