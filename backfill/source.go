package backfill

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/google/uuid"

	"github.com/mpegflow/mpegflow/internal/netguard"
	"github.com/mpegflow/mpegflow/internal/objscope"
	"github.com/mpegflow/mpegflow/internal/validation"
)

// Source kinds.
const (
	KindPrefix   = "prefix"
	KindManifest = "manifest"
)

// Manifest formats and what to do with a malformed line.
const (
	FormatJSONL   = "jsonl"
	FormatCSV     = "csv"
	OnErrorReject = "reject"
	OnErrorSkip   = "skip"
)

// MaxInputs is the most inputs one batch may expand into.
const MaxInputs = 1_000_000

// Bounds of what submitting a batch reads of its source, inputs or not:
// MaxEntries manifest lines or listed keys (twice MaxInputs, so blank and
// malformed lines or filtered-out keys have room), and MaxManifestBytes of
// manifest (a thousand bytes a line for MaxInputs lines, twice over).
const (
	MaxEntries       = 2 * MaxInputs
	MaxManifestBytes = 2 << 30
)

// Source is where a batch's inputs come from, as stored with the batch.
type Source struct {
	// Prefix is s3://bucket/key-prefix under the organization's root in the
	// deployment's bucket, or in a bucket granted to it (see Scope).
	Prefix  string   `json:"prefix,omitempty"`
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
	// ManifestAssetID names an asset of the organization holding one input
	// per line: JSON Lines ({"input": "s3://…"} or a JSON string) or CSV
	// (first column; a first row starting with "input" is a header).
	ManifestAssetID string `json:"manifest_asset_id,omitempty"`
	Format          string `json:"format,omitempty"`
	// OnError says what a malformed manifest line does: reject (default)
	// refuses the whole batch and lists the lines; skip expands the rest
	// and records the lines in the batch.
	OnError string `json:"on_error,omitempty"`
}

// Kind says which of the two sources this is.
func (s Source) Kind() string {
	if s.ManifestAssetID != "" {
		return KindManifest
	}
	return KindPrefix
}

// Normalize fills defaults and validates the shape of s for org (not its
// contents: Scan reads those). Field paths are under "source".
func (s *Source) Normalize(scope Scope) (bucket, prefix string, manifest uuid.UUID, err error) {
	var errs validation.Errors
	switch {
	case s.Prefix != "" && s.ManifestAssetID != "":
		errs.Add("source", "give either prefix or manifest_asset_id, not both")
	case s.Prefix != "":
		b, p, detail := scope.CheckPrefix(s.Prefix)
		if detail != "" {
			errs.Add("source.prefix", "%s", detail)
		}
		bucket, prefix = b, p
		if s.Format != "" || s.OnError != "" {
			errs.Add("source.format", "format and on_error apply to manifests only")
		}
	case s.ManifestAssetID != "":
		id, perr := uuid.Parse(s.ManifestAssetID)
		if perr != nil {
			errs.Add("source.manifest_asset_id", "must be an asset id (UUID)")
		}
		manifest = id
		if len(s.Include)+len(s.Exclude) > 0 {
			errs.Add("source.include", "include and exclude apply to prefixes only")
		}
		if s.Format == "" {
			s.Format = FormatJSONL
		}
		if s.Format != FormatJSONL && s.Format != FormatCSV {
			errs.Add("source.format", "must be jsonl or csv")
		}
		if s.OnError == "" {
			s.OnError = OnErrorReject
		}
		if s.OnError != OnErrorReject && s.OnError != OnErrorSkip {
			errs.Add("source.on_error", "must be reject or skip")
		}
	default:
		errs.Add("source", "is required: give prefix (s3://bucket/prefix) or manifest_asset_id")
	}
	if len(s.Include) > 20 || len(s.Exclude) > 20 {
		errs.Add("source.include", "at most 20 include and 20 exclude patterns")
	}
	for i, g := range s.Include {
		if detail := checkGlob(g); detail != "" {
			errs.Add(fmt.Sprintf("source.include[%d]", i), "%s", detail)
		}
	}
	for i, g := range s.Exclude {
		if detail := checkGlob(g); detail != "" {
			errs.Add(fmt.Sprintf("source.exclude[%d]", i), "%s", detail)
		}
	}
	return bucket, prefix, manifest, errs.Err()
}

// Scope is what a batch of one organization may read: the objects its
// storage scope admits (objscope: keys under its root in the deployment's
// bucket, and buckets granted to it), and public https URLs in manifests.
type Scope struct {
	Objects objscope.Scope
	// Guard, when set, admits plain http:// manifest inputs if it allows
	// http (development only), and refuses manifest URLs that name a
	// non-public address (an IP literal or a localhost name) when the batch
	// is accepted; the encoder's connection-time check covers names that
	// resolve to one. Without it, inputs must be https or s3.
	Guard *netguard.Guard
}

// CheckPrefix parses s3://bucket/prefix and returns why the organization
// may not list it, or "".
func (s Scope) CheckPrefix(raw string) (bucket, prefix, detail string) {
	ref, err := s.Objects.Prefix(raw)
	if err != nil {
		return "", "", err.Error()
	}
	return ref.Bucket, ref.Key, ""
}

// CheckInput validates one manifest input and returns its normalized form
// (the batch's idempotency key for that input) or why it is refused. A
// storage reference (s3://, or a URL of the deployment's storage endpoint)
// becomes its canonical s3:// URL, which the coordinator presigns at claim.
func (s Scope) CheckInput(raw string) (string, string) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", "empty input"
	}
	if len(raw) > 2048 {
		return "", "input longer than 2048 characters"
	}
	ref, isRef, err := s.Objects.Reference(raw)
	if err != nil {
		return "", "input " + err.Error()
	}
	if isRef {
		return ref.URL(), ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", "input must be an absolute s3:// or https:// URL"
	}
	if u.User != nil {
		return "", "input must not carry credentials"
	}
	switch u.Scheme {
	case "https":
	case "http":
		if s.Guard == nil || !s.Guard.AllowHTTP() {
			return "", "input must use https (plain http is allowed only in development)"
		}
	default:
		return "", "input must use s3 or https"
	}
	if s.Guard != nil {
		if err := s.Guard.CheckLiteral(u.String()); err != nil {
			return "", err.Error()
		}
	}
	return u.String(), ""
}
