package apiv1

// Lanes: live work and batch backfills never share a queue, so a backfill of
// millions of files cannot delay a live encode. Each lane of a pool is its
// own Redis list and its own KEDA ScaledJob.
const (
	// LaneLive is the default lane of a job.
	LaneLive = "live"
	// LaneBackfill is the lane of batch jobs (and of jobs that ask for it).
	LaneBackfill = "backfill"
)

// Lanes lists every lane, live first.
var Lanes = []string{LaneLive, LaneBackfill}

// Accelerators a pool's encode pods run on; the encoder picks its FFmpeg
// codecs by it and the operator its node resources.
const (
	// AcceleratorCPU encodes in software (libx264).
	AcceleratorCPU = "cpu"
	// AcceleratorNVIDIA encodes on an NVIDIA GPU (NVENC).
	AcceleratorNVIDIA = "nvidia"
)

// Accelerators lists every accelerator, the default first.
var Accelerators = []string{AcceleratorCPU, AcceleratorNVIDIA}
