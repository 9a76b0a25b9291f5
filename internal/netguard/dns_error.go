package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
)

// ErrHostNotFound matches (errors.Is) a lookup of a name that does not
// exist. Retrying cannot help: the URL names no host.
var ErrHostNotFound = errors.New("host not found")

// DNSError is a failed host lookup, told without the resolver that failed.
// Go's *net.DNSError names the resolver in its text ("lookup x on
// 10.0.0.10:53: no such host"): that is the cluster's DNS service, which no
// tenant needs to see, in a job's error or a webhook's delivery log. The
// guard's resolving dialer returns a DNSError instead; DNSFailure turns
// either kind into one.
type DNSError struct {
	// Host is the name that was looked up.
	Host string
	// IsNotFound, IsTimeout and IsTemporary mirror net.DNSError. A lookup
	// counts as not found (see NotFound) only when it is not also a timeout
	// or a temporary failure.
	IsNotFound, IsTimeout, IsTemporary bool
	// stopped is the context's error when the lookup was cancelled or ran
	// out of time, so errors.Is(err, context.Canceled) still holds.
	stopped error
}

func (e *DNSError) Error() string {
	switch {
	case e.NotFound():
		return "host " + e.Host + " not found"
	case errors.Is(e.stopped, context.Canceled):
		return "lookup of host " + e.Host + " was cancelled"
	case e.IsTimeout:
		return "lookup of host " + e.Host + " timed out"
	case e.IsTemporary:
		return "lookup of host " + e.Host + " failed temporarily"
	}
	return "lookup of host " + e.Host + " failed"
}

// NotFound reports that the name does not exist (NXDOMAIN, or no address):
// the URL's fault, not worth retrying. Timeouts and temporary failures
// (SERVFAIL, an unreachable resolver) are worth retrying.
func (e *DNSError) NotFound() bool { return e.IsNotFound && !e.IsTimeout && !e.IsTemporary }

// Timeout and Temporary implement net.Error, as *net.DNSError does.
func (e *DNSError) Timeout() bool { return e.IsTimeout }

// Temporary reports a failure that retrying may cure.
func (e *DNSError) Temporary() bool { return !e.NotFound() }

// Is makes errors.Is(err, ErrHostNotFound) true for names that do not
// exist.
func (e *DNSError) Is(target error) bool { return target == ErrHostNotFound && e.NotFound() }

// Unwrap returns the context's error for a cancelled or timed-out lookup,
// nil otherwise. It never returns the *net.DNSError, whose text names the
// resolver.
func (e *DNSError) Unwrap() error { return e.stopped }

var _ net.Error = (*DNSError)(nil)

// DNSFailure returns the lookup failure inside err, told without the
// resolver's address, or nil when err holds none. It recognises the guard's
// *DNSError and Go's *net.DNSError (from clients that do not dial through a
// Guard), so callers can show either to a tenant: use its Error() in place
// of err's text, and NotFound to decide whether retrying can help.
func DNSFailure(err error) *DNSError {
	var own *DNSError
	if errors.As(err, &own) {
		return own
	}
	var std *net.DNSError
	if !errors.As(err, &std) {
		return nil
	}
	return fromNetDNSError(strings.TrimSuffix(std.Name, "."), std)
}

// lookupFailed is what the guard returns when resolving host failed with
// err: a *DNSError for Go's resolver errors, err wrapped for other
// resolvers' (tests').
func lookupFailed(host string, err error) error {
	var std *net.DNSError
	if errors.As(err, &std) {
		return fromNetDNSError(host, std)
	}
	return fmt.Errorf("resolve %s: %w", host, err)
}

func fromNetDNSError(host string, std *net.DNSError) *DNSError {
	e := &DNSError{Host: host, IsNotFound: std.IsNotFound, IsTimeout: std.IsTimeout, IsTemporary: std.IsTemporary}
	switch {
	case errors.Is(std, context.Canceled):
		e.stopped = context.Canceled
	case errors.Is(std, context.DeadlineExceeded):
		e.stopped, e.IsTimeout = context.DeadlineExceeded, true
	}
	return e
}

// notFound is the answer for a name that resolved to no address at all.
func notFound(host string) *DNSError { return &DNSError{Host: host, IsNotFound: true} }
