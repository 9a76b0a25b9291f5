package client

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
)

// problemPrefix starts every problem type MpegFlow issues.
const problemPrefix = "urn:mpegflow:problem:"

// FieldError names one offending field of a validation failure, by its JSON
// path (spec.renditions[0].codec), so a caller can point at the exact input.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// Error is the server refusing a request: an RFC 9457 problem, or, when a
// proxy answered instead of MpegFlow, the bare status and the start of the
// body. Callers switch on Status or Type; people read Error().
type Error struct {
	Status   int          `json:"status"`
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Fields   []FieldError `json:"errors,omitempty"`
}

// Kind is the problem type without its URN prefix ("validation",
// "not-found", …), or the status text when the answer was no problem.
func (e *Error) Kind() string {
	if k, ok := strings.CutPrefix(e.Type, problemPrefix); ok && k != "" {
		return k
	}
	if e.Type != "" && e.Type != "about:blank" {
		return e.Type
	}
	return strings.ToLower(cmp.Or(e.Title, http.StatusText(e.Status), "error"))
}

// Error is one line: the status, the kind, what is wrong (every offending
// field of a validation failure) and, for a key problem, how to fix it.
// For example: `422 validation: workflow: unknown built-in workflow; want
// one of cmaf-ladder, dash-ladder, hls-ladder, mp4-720p, thumbnails`.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.Status, e.Kind())
	switch {
	case len(e.Fields) > 0:
		b.WriteString(": ")
		for i, f := range e.Fields {
			if i > 0 {
				b.WriteString("; ")
			}
			if f.Field != "" {
				b.WriteString(f.Field + ": ")
			}
			b.WriteString(f.Detail)
		}
	case e.Detail != "":
		b.WriteString(": " + e.Detail)
	}
	if e.Status == http.StatusUnauthorized {
		b.WriteString("; pass a valid key with --api-key or MPEGFLOW_API_KEY (`mpegflow dev` prints one for a local stack)")
	}
	return oneLine(b.String())
}

// IsNotFound reports whether err is the server answering 404.
func IsNotFound(err error) bool { return StatusOf(err) == http.StatusNotFound }

// StatusOf is the HTTP status of an API refusal in err's chain, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// errorFrom reads a refusal. A problem+json body becomes the problem; any
// other body keeps its status and its first line.
func errorFrom(resp *http.Response) *Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &Error{}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/problem+json" || mt == "application/json" {
		if json.Unmarshal(body, e) != nil {
			*e = Error{}
		}
	}
	e.Status = resp.StatusCode
	if e.Title == "" {
		e.Title = http.StatusText(resp.StatusCode)
	}
	if e.Type == "" && e.Detail == "" && len(e.Fields) == 0 {
		e.Detail = firstLine(string(body), 200)
		if e.Detail == "" {
			e.Detail = "the server at " + resp.Request.URL.Host + " answered " + resp.Status
		}
	}
	if e.Status == http.StatusUnauthorized && e.Kind() == "unauthenticated" {
		e.Detail = "the API key is unknown or revoked"
	}
	return e
}

// UnreachableError is a request that got no answer: nothing listens at the
// server URL, the name does not resolve, TLS failed or the server timed out.
type UnreachableError struct {
	Server string
	Err    error
}

// Error says where the client looked, why it failed and what to do.
func (e *UnreachableError) Error() string {
	return oneLine(fmt.Sprintf("MpegFlow server unreachable at %s: %s; start one with `mpegflow dev`, or point --server or MPEGFLOW_SERVER at a running server",
		e.Server, reason(e.Err)))
}

// Unwrap exposes the transport error (syscall.ECONNREFUSED, *net.DNSError…).
func (e *UnreachableError) Unwrap() error { return e.Err }

// reason is the innermost useful part of a transport error, without the
// method and URL net/http repeats.
func reason(err error) string {
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &dns):
		return dns.Error()
	case errors.As(err, &ne) && ne.Timeout():
		return "no answer in time"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func firstLine(s string, limit int) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return s
}
