package coordinatorv1

// Metadata keys of the coordinator's calls (coordinator.proto's header says
// what each carries). Encode pods send them and the coordinator reads them,
// so both take the names from here.
const (
	// MetadataAuthorization carries "Bearer <pool worker token>" on every call.
	MetadataAuthorization = "authorization"
	// MetadataPool names the pool the worker token belongs to, on every call.
	MetadataPool = "mpegflow-pool"
	// MetadataClaimToken carries the claim token Claim returned, on every
	// call after Claim: only its holder may heartbeat, upload, complete or
	// fail the job.
	MetadataClaimToken = "mpegflow-claim-token"
)
