package dispatcher

import "time"

// backoff is base·2^(attempt−1) capped at limit (attempt is 1-based),
// scaled by lo + width·jitter for a jitter in [0, 1).
func backoff(base, limit time.Duration, attempt int, lo, width, jitter float64) time.Duration {
	d := base
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return time.Duration(float64(d) * (lo + width*jitter))
}
