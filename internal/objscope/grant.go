package objscope

import (
	"regexp"
	"strings"

	"github.com/mpegflow/mpegflow/internal/validation"
)

// bucketName is S3's bucket naming rule: 3 to 63 lowercase letters, digits,
// dots and hyphens, starting and ending with a letter or digit.
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// CheckGrant validates a grant a SuperAdmin asks for; field paths are
// "bucket" and "prefix". The deployment's own bucket cannot be granted: it
// is divided between organizations by their roots, and a grant on it would
// hand one organization another's objects.
func (st Storage) CheckGrant(g Grant) validation.Errors {
	var errs validation.Errors
	switch {
	case !bucketName.MatchString(g.Bucket) || strings.Contains(g.Bucket, "..") || isIP(g.Bucket):
		errs.Add("bucket", "must be an S3 bucket name: 3 to 63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit")
	case g.Bucket == st.Bucket:
		errs.Add("bucket", "is the deployment's own bucket, where each organization already has its root; grant other buckets only")
	}
	if g.Prefix != "" {
		if reason := checkKey(g.Prefix, prefix); reason != "" {
			errs.Add("prefix", "%s", reason)
		} else if !strings.HasSuffix(g.Prefix, "/") {
			errs.Add("prefix", "must end with '/' (or be empty to grant the whole bucket)")
		}
	}
	return errs
}
