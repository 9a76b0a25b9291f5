package apiserver

import (
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/mpegflow/mpegflow/internal/ratelimit"
)

// Rate limit response fields, named as in the IETF httpapi draft "RateLimit
// Fields for HTTP" (draft-ietf-httpapi-ratelimit-headers-06), for the
// bucket closest to empty (or the one that refused the request).
const (
	// HeaderRateLimitLimit is the bucket's size: requests it allows at once.
	HeaderRateLimitLimit = "RateLimit-Limit"
	// HeaderRateLimitRemaining is how many requests it allows now.
	HeaderRateLimitRemaining = "RateLimit-Remaining"
	// HeaderRateLimitReset is seconds (rounded up) until it is full again.
	HeaderRateLimitReset = "RateLimit-Reset"
)

// applyLimit writes a limiter decision onto the response: the budget
// headers when the budget was consulted, and a 429 when refused.
func (s *Server) applyLimit(c *fiber.Ctx, d ratelimit.Decision) error {
	if !d.Enforced {
		return nil // Redis unavailable: the limiter failed open and logged why
	}
	c.Set(HeaderRateLimitLimit, strconv.Itoa(d.Limit.Burst))
	c.Set(HeaderRateLimitRemaining, strconv.Itoa(d.Remaining))
	c.Set(HeaderRateLimitReset, strconv.Itoa(ceilSeconds(d.Reset)))
	if d.Allowed {
		return nil
	}
	wait := ceilSeconds(d.RetryAfter)
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(wait))
	retry := "; retry after " + strconv.Itoa(wait) + " s"
	var detail string
	switch d.Scope {
	case ratelimit.ScopeKey:
		detail = "this API key sent more requests than its limit (" + d.Limit.String() + ")" + retry
	case ratelimit.ScopeOrg:
		detail = "your organization's API keys together sent more requests than its limit (" + d.Limit.String() + ")" + retry
	default:
		detail = "too many requests with invalid API keys came from your address (" + d.Limit.String() + ") and it may present no key, valid or not, for now" + retry
	}
	return problem(fiber.StatusTooManyRequests, "rate-limited", detail)
}

// ceilSeconds rounds a duration up to whole seconds, as Retry-After and
// RateLimit-Reset carry them.
func ceilSeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}
