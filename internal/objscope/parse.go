package objscope

import (
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// hasS3Scheme reports whether raw claims the s3 scheme, well-formed or not:
// every such string is a storage reference and is refused unless exact.
func hasS3Scheme(raw string) bool {
	return len(raw) >= 3 && strings.EqualFold(raw[:3], "s3:")
}

// parseS3 resolves s3://bucket/key. It reads the string itself instead of
// trusting url.Parse, which decodes %2F into a separator and accepts forms
// (a port, userinfo, an opaque "s3:bucket/key") that have no meaning here.
func (s Scope) parseS3(raw string, k kind) (Ref, error) {
	if reason := checkRaw(raw); reason != "" {
		return Ref{}, s.refuse("%s", reason)
	}
	if !strings.EqualFold(raw[:min(len(raw), 5)], "s3://") {
		return Ref{}, s.refuse("must be s3://bucket/key")
	}
	rest := raw[5:]
	if strings.ContainsAny(rest, "?#") {
		return Ref{}, s.refuse("has a query string or fragment; an s3 URL is a bucket and a key only (encode '?' and '#' in keys as %%3F and %%23)")
	}
	bucket, path, _ := strings.Cut(rest, "/")
	switch {
	case bucket == "":
		return Ref{}, s.refuse("names no bucket: want s3://bucket/key")
	case strings.Contains(bucket, "@"):
		return Ref{}, s.refuse("must not carry credentials")
	case strings.ContainsAny(bucket, ":%"):
		return Ref{}, s.refuse("has a port or an encoded character in the bucket name")
	}
	key, reason := decodeKey(path, k)
	if reason != "" {
		return Ref{}, s.refuse("%s", reason)
	}
	ref := Ref{Bucket: bucket, Key: key}
	if err := s.admit(ref, k); err != nil {
		return Ref{}, err
	}
	return ref, nil
}

// checkRaw refuses characters no storage reference may carry, before any
// decoding.
func checkRaw(raw string) string {
	if strings.ContainsRune(raw, '\\') {
		return "contains a backslash"
	}
	if strings.ContainsFunc(raw, isControl) {
		return "contains a control character"
	}
	return ""
}

func isControl(r rune) bool { return unicode.IsControl(r) }

// decodeKey percent-decodes the key part of a URL path and checks it. An
// encoded '/', '\' or '.' is refused outright: it is how a segment is
// smuggled past a check that splits the encoded form.
func decodeKey(escaped string, k kind) (string, string) {
	for i := 0; i < len(escaped); i++ {
		if escaped[i] != '%' {
			continue
		}
		if i+2 >= len(escaped) || !isHex(escaped[i+1]) || !isHex(escaped[i+2]) {
			return "", "has malformed percent-encoding"
		}
		switch v := unhex(escaped[i+1])<<4 | unhex(escaped[i+2]); {
		case v == '/' || v == '\\' || v == '.':
			return "", "has a percent-encoded '/', '\\' or '.'; write keys plainly"
		case v < 0x20 || v == 0x7f:
			return "", "contains a control character"
		}
	}
	key, err := url.PathUnescape(escaped)
	if err != nil {
		return "", "has malformed percent-encoding"
	}
	return key, checkKey(key, k)
}

// checkKey checks a decoded key (or listing prefix) for every form that
// could address something other than what it spells.
func checkKey(key string, k kind) string {
	switch {
	case len(key) > MaxKeyBytes:
		return "has a key longer than 1024 bytes (the S3 limit)"
	case !utf8.ValidString(key):
		return "has a key that is not valid UTF-8"
	case strings.ContainsFunc(key, isControl):
		return "contains a control character"
	case strings.ContainsRune(key, '\\'):
		return "contains a backslash"
	}
	lower := strings.ToLower(key)
	for _, enc := range []string{"%2e", "%2f", "%5c"} {
		if strings.Contains(lower, enc) {
			return "has a double percent-encoded '/', '\\' or '.'"
		}
	}
	if key == "" {
		if k == object {
			return "names no object: want s3://bucket/key"
		}
		return ""
	}
	segs := strings.Split(key, "/")
	for i, seg := range segs {
		switch seg {
		case "":
			if i == len(segs)-1 && i > 0 {
				if k == object {
					return "ends with '/': name an object, not a folder"
				}
				continue
			}
			return "has an empty path segment (a leading '/' or '//')"
		case ".", "..":
			return "has a '.' or '..' path segment"
		}
	}
	return ""
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// presignParams are the query parameters of presigned S3 URLs (SigV4 and
// SigV2) and the SDK's operation marker. A storage URL may carry these (a
// presigned URL copied from somewhere): they are dropped, because the
// coordinator presigns the canonical reference afresh. Any other parameter
// (versionId, response-*, …) changes what is read and is refused.
var presignParams = map[string]bool{
	"x-amz-algorithm": true, "x-amz-credential": true, "x-amz-date": true, "x-amz-expires": true,
	"x-amz-signedheaders": true, "x-amz-signature": true, "x-amz-security-token": true,
	"x-amz-content-sha256": true, "x-amz-checksum-mode": true, "x-amz-user-agent": true, "x-id": true,
	"awsaccesskeyid": true, "signature": true, "expires": true,
}

// parseEndpointURL resolves an http(s) URL on the deployment's storage
// endpoint. isRef is false for URLs elsewhere (and for strings that are no
// URL at all: the caller refuses those as it would any bad URL).
func (s Scope) parseEndpointURL(raw string) (ref Ref, isRef bool, err error) {
	u, perr := url.Parse(raw)
	if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Ref{}, false, nil //nolint:nilerr // no URL at all is not a reference; the caller refuses it as a bad URL
	}
	bucket, escapedKey, ok := s.Storage.locate(u, s.Grants)
	if !ok {
		return Ref{}, false, nil
	}
	if reason := checkRaw(raw); reason != "" {
		return Ref{}, true, s.refuse("%s", reason)
	}
	switch {
	case u.User != nil:
		return Ref{}, true, s.refuse("must not carry credentials")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return Ref{}, true, s.refuse("has a fragment; a storage URL names a bucket and a key only")
	case bucket == "":
		return Ref{}, true, s.refuse("names no bucket of the storage endpoint")
	case strings.ContainsAny(bucket, "%:@"):
		return Ref{}, true, s.refuse("has an encoded character in the bucket name")
	}
	q, qerr := url.ParseQuery(u.RawQuery)
	if qerr != nil {
		return Ref{}, true, s.refuse("has a malformed query string")
	}
	for name := range q {
		if !presignParams[strings.ToLower(name)] {
			return Ref{}, true, s.refuse("has query parameter %q; a storage URL may carry only presigning parameters", name)
		}
	}
	key, reason := decodeKey(escapedKey, object)
	if reason != "" {
		return Ref{}, true, s.refuse("%s", reason)
	}
	return Ref{Bucket: bucket, Key: key}, true, nil
}

// locate finds the bucket and the still-escaped key an http(s) URL names
// when it addresses the storage endpoint (its host and port): path-style
// (host/bucket/key) or virtual-hosted (bucket.host/key). Without an
// endpoint (AWS S3) it recognises S3 URLs that name the deployment's bucket
// or a granted one; other AWS buckets are ordinary URLs, read without
// MpegFlow's credentials.
func (st Storage) locate(u *url.URL, grants []Grant) (bucket, escapedKey string, ok bool) {
	host := normHost(u.Hostname())
	path := u.EscapedPath()
	if st.Endpoint != "" {
		ep, err := parsedEndpoint(st.Endpoint)
		if err != nil || ep.Host == "" {
			return "", "", false
		}
		epHost := normHost(ep.Hostname())
		if base := strings.TrimSuffix(ep.EscapedPath(), "/"); base != "" {
			if rest, found := strings.CutPrefix(path, base); found && (rest == "" || rest[0] == '/') {
				path = rest
			}
		}
		if !samePort(u, ep) {
			return "", "", false
		}
		switch {
		case sameHost(host, epHost):
			bucket, key, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
			return bucket, key, true
		case !isIP(epHost) && strings.HasSuffix(host, "."+epHost):
			return strings.TrimSuffix(host, "."+epHost), strings.TrimPrefix(path, "/"), true
		}
		return "", "", false
	}
	name, found := strings.CutSuffix(host, ".amazonaws.com")
	if !found {
		if name, found = strings.CutSuffix(host, ".amazonaws.com.cn"); !found {
			return "", "", false
		}
	}
	buckets := []string{st.Bucket}
	for _, g := range grants {
		buckets = append(buckets, g.Bucket)
	}
	for _, b := range buckets {
		if rest, found := strings.CutPrefix(name, b+"."); found && isS3Service(rest) {
			return b, strings.TrimPrefix(path, "/"), true
		}
	}
	if isS3Service(name) {
		bucket, key, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
		for _, b := range buckets {
			if bucket == b {
				return bucket, key, true
			}
		}
	}
	return "", "", false
}

// samePort reports whether u reaches the endpoint's port. The web's default
// ports count as one: a server on 443 usually answers on 80 as well, and a
// presigned URL's signature covers the host without a default port, so
// switching the scheme would keep it valid.
func samePort(u, ep *url.URL) bool {
	a, b := portOf(u), portOf(ep)
	return a == b || (a == "80" || a == "443") && (b == "80" || b == "443")
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// isS3Service reports whether the labels before .amazonaws.com name S3:
// s3, s3.region, s3-region, s3.dualstack.region, s3-accelerate, ….
func isS3Service(name string) bool {
	return name == "s3" || strings.HasPrefix(name, "s3.") || strings.HasPrefix(name, "s3-")
}

func normHost(h string) string { return strings.TrimSuffix(strings.ToLower(h), ".") }

func isIP(h string) bool {
	_, err := netip.ParseAddr(h)
	return err == nil
}

// sameHost compares host names, and IP literals by address (so
// [::ffff:127.0.0.1] is 127.0.0.1).
func sameHost(a, b string) bool {
	ia, aerr := netip.ParseAddr(a)
	ib, berr := netip.ParseAddr(b)
	if aerr == nil && berr == nil {
		return ia.WithZone("").Unmap() == ib.WithZone("").Unmap()
	}
	return a == b
}

// endpoints holds each storage endpoint parsed so far (*url.URL by its
// string; a deployment has one, set in its configuration, never by a
// tenant): locate places every http(s) URL a submission or a claim names
// against it, and parsing it again each time was a third of a
// submission's URL parsing. The parsed URLs are only read.
var endpoints sync.Map

// parsedEndpoint is url.Parse(raw), parsed once per endpoint; a string
// that does not parse is not kept.
func parsedEndpoint(raw string) (*url.URL, error) {
	if u, ok := endpoints.Load(raw); ok {
		return u.(*url.URL), nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	endpoints.Store(raw, u)
	return u, nil
}
