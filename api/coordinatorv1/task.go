package coordinatorv1

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
