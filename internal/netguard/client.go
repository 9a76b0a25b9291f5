package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// ClientConfig shapes an HTTP client built by Guard.Client.
type ClientConfig struct {
	// Timeout bounds a whole request, body included (0: none, for large
	// downloads whose context sets the limit).
	Timeout time.Duration
	// MaxRedirects is how many redirects are followed, each checked again
	// (0: none; the 3xx answer is returned as it is).
	MaxRedirects int
	// UserAgent is sent with every request when set.
	UserAgent string
}

// Client returns an HTTP client that connects only where the guard allows:
// every dial (redirect hops and reconnections included) passes Control, the
// scheme of every redirect is checked again, and no proxy from the
// environment is used (a proxy would connect on our behalf, past the check).
func (g *Guard) Client(cfg ClientConfig) *http.Client {
	d := g.Dialer(net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second})
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           g.dialContext(d),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	var rt http.RoundTripper = tr
	if cfg.UserAgent != "" {
		rt = userAgent{next: tr, ua: cfg.UserAgent}
	}
	return &http.Client{
		Transport: rt,
		Timeout:   cfg.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if cfg.MaxRedirects == 0 {
				return http.ErrUseLastResponse
			}
			if len(via) > cfg.MaxRedirects {
				return fmt.Errorf("stopped after %d redirects", cfg.MaxRedirects)
			}
			if err := g.CheckScheme(req.URL); err != nil {
				return fmt.Errorf("redirect to %s: %w", req.URL.Redacted(), err)
			}
			return nil
		},
	}
}

// dialContext resolves host names with the guard's resolver (so tests can
// make a name resolve to 127.0.0.1) and dials the addresses in turn; the
// dialer's Control checks each one right before it connects. A failed
// lookup is a *DNSError, whose text does not name the resolver.
func (g *Guard) dialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		if _, err := netip.ParseAddr(host); err == nil {
			return d.DialContext(ctx, network, addr)
		}
		ips, err := g.lookup(ctx, host)
		if err != nil {
			return nil, err
		}
		var errs []error
		for _, ip := range ips {
			c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
		}
		return nil, errors.Join(errs...)
	}
}

type userAgent struct {
	next http.RoundTripper
	ua   string
}

func (u userAgent) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", u.ua)
	return u.next.RoundTrip(r)
}

// Refusal returns the guard's refusal inside err (a dial or redirect that
// the guard stopped), or nil.
func Refusal(err error) *RefusedError {
	var r *RefusedError
	if errors.As(err, &r) {
		return r
	}
	return nil
}
