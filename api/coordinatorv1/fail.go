package coordinatorv1

// PreemptedError is the FailRequest.error a terminating pod (SIGTERM: spot
// reclaim, drain) reports with retryable=true. The coordinator then puts
// the job back on its queue at once without using an attempt, instead of
// waiting out a backoff.
const PreemptedError = "preempted"

// Values of FailResponse.outcome: what became of the failed attempt.
const (
	// OutcomeRequeued: back on the queue now (a preempted attempt).
	OutcomeRequeued = "requeued"
	// OutcomeRetryScheduled: queued again at FailResponse.retry_at_unix_ms.
	OutcomeRetryScheduled = "retry_scheduled"
	// OutcomeFailed: failed for good (not retryable, or the last attempt).
	OutcomeFailed = "failed"
)
