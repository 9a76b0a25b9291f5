package objscope

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/google/uuid"
)

// MaxKeyBytes is S3's limit on the length of an object key.
const MaxKeyBytes = 1024

// Storage is the deployment's object storage, as tenants' references name it.
type Storage struct {
	// Bucket is the deployment's bucket (S3_BUCKET). Each organization owns
	// the keys under orgs/{its id}/ in it, and nothing else.
	Bucket string
	// Endpoint is the S3 endpoint URL (S3_ENDPOINT), empty for AWS S3. An
	// http(s) URL on its host and port names an object of storage,
	// whatever the bucket; on AWS, an S3 URL that names the deployment's
	// bucket (or a granted one) does.
	Endpoint string
}

// Grant opens one bucket other than the deployment's, or a prefix of it, to
// one organization. Only a SuperAdmin creates grants; without one, an
// organization can name nothing outside its own root.
type Grant struct {
	Bucket string
	// Prefix limits the grant to keys that start with it; "" grants the
	// whole bucket. A non-empty prefix ends with "/".
	Prefix string
}

// Ref is a bucket and a key: an object, or the prefix of a listing.
type Ref struct {
	Bucket string
	Key    string
}

// URL is the canonical s3:// form of r. The API stores job inputs in this
// form and the coordinator resolves it again at claim; every key Scope
// admits comes back unchanged from its URL.
func (r Ref) URL() string {
	return (&url.URL{Scheme: "s3", Host: r.Bucket, Path: "/" + r.Key}).String()
}

// Scope is what one organization may name.
type Scope struct {
	OrgID   uuid.UUID
	Storage Storage
	Grants  []Grant
}

// Root is the organization's key prefix in the deployment's bucket.
func (s Scope) Root() string { return "orgs/" + s.OrgID.String() + "/" }

// ErrRefused matches every *Refusal with errors.Is.
var ErrRefused = errors.New("storage reference refused")

// Refusal says why a reference is outside the scope and what the scope
// allows; its Error text is written for the tenant who gave the reference.
type Refusal struct {
	Reason  string
	Allowed string
}

func (r *Refusal) Error() string { return r.Reason + "; " + r.Allowed }

// Is makes errors.Is(err, ErrRefused) true for every Refusal.
func (r *Refusal) Is(target error) bool { return target == ErrRefused }

func (s Scope) refuse(format string, args ...any) error {
	return &Refusal{Reason: fmt.Sprintf(format, args...), Allowed: s.allowed()}
}

// allowed names what the scope admits, for refusals.
func (s Scope) allowed() string {
	var b strings.Builder
	b.WriteString("allowed: s3://" + s.Storage.Bucket + "/" + s.Root() + "… (your organization's storage)")
	for _, g := range s.Grants {
		b.WriteString(", s3://" + g.Bucket + "/" + g.Prefix + "…")
	}
	if len(s.Grants) > 0 {
		b.WriteString(" (granted to your organization)")
	}
	return b.String()
}

// kind is what a reference must name.
type kind int

const (
	object kind = iota // one object: a key that does not end with "/"
	prefix             // the prefix of a listing: "" or ending with "/" allowed
)

// Reference resolves raw when it is a storage reference: an s3:// URL, or
// an http(s) URL on the deployment's storage endpoint. isRef is false, and
// err nil, for anything else (an ordinary URL the caller checks as such).
// A storage reference must name one object inside the scope; err is then a
// *Refusal.
func (s Scope) Reference(raw string) (ref Ref, isRef bool, err error) {
	if hasS3Scheme(raw) {
		ref, err := s.parseS3(raw, object)
		return ref, true, err
	}
	ref, isRef, err = s.parseEndpointURL(raw)
	if !isRef || err != nil {
		return Ref{}, isRef, err
	}
	if err := s.admit(ref, object); err != nil {
		return Ref{}, true, err
	}
	return ref, true, nil
}

// Object resolves raw, which must be a storage reference, to one object
// inside the scope.
func (s Scope) Object(raw string) (Ref, error) {
	ref, isRef, err := s.Reference(raw)
	if err == nil && !isRef {
		return Ref{}, s.refuse("must be an s3://bucket/key URL")
	}
	return ref, err
}

// Prefix resolves s3://bucket/prefix, the source of a listing, inside the
// scope. The organization's root itself is a valid prefix.
func (s Scope) Prefix(raw string) (Ref, error) {
	if !hasS3Scheme(raw) {
		return Ref{}, s.refuse("must be an s3://bucket/prefix URL")
	}
	return s.parseS3(raw, prefix)
}

// CheckObject admits a reference that did not come as a URL: an asset's or
// an output's stored object key, checked again before it is presigned.
func (s Scope) CheckObject(ref Ref) error {
	if reason := checkKey(ref.Key, object); reason != "" {
		return s.refuse("%s", reason)
	}
	return s.admit(ref, object)
}

// admit checks that a well-formed ref lies inside the scope.
func (s Scope) admit(ref Ref, k kind) error {
	if ref.Bucket == s.Storage.Bucket {
		root := s.Root()
		switch {
		case ref.Key == root && k == object:
			return s.refuse("names your organization's root, not an object")
		case strings.HasPrefix(ref.Key, root):
			return nil
		case ref.Key == "":
			return s.refuse("names the bucket's root")
		default:
			return s.refuse("is outside your organization's storage")
		}
	}
	granted := false
	for _, g := range s.Grants {
		if g.Bucket != ref.Bucket {
			continue
		}
		granted = true
		if strings.HasPrefix(ref.Key, g.Prefix) {
			return nil
		}
	}
	if granted {
		return s.refuse("is outside the prefixes of bucket %q granted to your organization", ref.Bucket)
	}
	return s.refuse("names bucket %q, which is not granted to your organization", ref.Bucket)
}
