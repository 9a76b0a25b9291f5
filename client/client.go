package client

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config holds the client's tunables. Zero values take the defaults noted.
type Config struct {
	// HTTPClient sends every request, API calls and transfers alike
	// (default: a client whose transport waits at most 60 s for response
	// headers but never cuts a long upload or download short).
	HTTPClient *http.Client
	// RequestTimeout bounds one API call, not a transfer (default 60 s),
	// the waits of RateLimitWait included: a Retry-After that would end
	// past it is not waited, the 429 is the call's error at once.
	RequestTimeout time.Duration
	// PollInterval is how often WatchEvents reads job states when the
	// server has no WebSocket endpoint (default 1 s).
	PollInterval time.Duration
	// ResyncInterval is how often WatchEvents re-reads unfinished jobs while
	// streaming over the WebSocket, so a missed event cannot stall a watch
	// (default 10 s).
	ResyncInterval time.Duration
	// WatchOutage is how long a watch that has started rides out an
	// unreachable server or 5xx answers (a restarting `mpegflow dev`, a
	// rolling deploy) before it gives up (default 60 s).
	WatchOutage time.Duration
	// UserAgent is sent with every API request (default "mpegflow-client").
	UserAgent string
	// Clock paces polling; tests inject a fake one (default the real clock).
	Clock Clock
	// PartConcurrency is how many parts of a multipart upload are sent at
	// once (default 4).
	PartConcurrency int
	// RateLimitWait is how long one API call waits in all when the server
	// answers 429 Too Many Requests: the call is sent again after the
	// answer's Retry-After (1 s when it has none) as long as the waits add
	// up to no more than this (default 30 s; negative: never wait, return
	// the 429 at once). A refused request was not carried out, so sending
	// it again is safe whatever its method. The waits count against
	// RequestTimeout.
	RateLimitWait time.Duration
}

// Client talks to one MpegFlow server with one API key. It is safe for
// concurrent use.
type Client struct {
	cfg  Config
	base *url.URL
	key  string
	http *http.Client
}

// New returns a client of the server at baseURL (http:// or https://,
// without /v1) authenticating with apiKey. It does not contact the server.
func New(baseURL, apiKey string, cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q must be an absolute http:// or https:// URL such as http://localhost:8080", baseURL)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("server URL %q must have no credentials, query or fragment", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if strings.TrimSpace(apiKey) == "" {
		return nil, errors.New("no API key: pass --api-key or set MPEGFLOW_API_KEY")
	}
	cfg.RequestTimeout = cmp.Or(cfg.RequestTimeout, 60*time.Second)
	cfg.PollInterval = cmp.Or(cfg.PollInterval, time.Second)
	cfg.ResyncInterval = cmp.Or(cfg.ResyncInterval, 10*time.Second)
	cfg.WatchOutage = cmp.Or(cfg.WatchOutage, time.Minute)
	cfg.UserAgent = cmp.Or(cfg.UserAgent, "mpegflow-client")
	cfg.PartConcurrency = cmp.Or(cfg.PartConcurrency, 4)
	switch {
	case cfg.RateLimitWait == 0:
		cfg.RateLimitWait = 30 * time.Second
	case cfg.RateLimitWait < 0:
		cfg.RateLimitWait = 0
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Transport: defaultTransport()}
	}
	if cfg.RequestTimeout < 0 || cfg.PollInterval < 0 || cfg.ResyncInterval < 0 || cfg.WatchOutage < 0 || cfg.PartConcurrency < 0 {
		return nil, errors.New("client: timeouts and intervals must not be negative")
	}
	return &Client{cfg: cfg, base: u, key: strings.TrimSpace(apiKey), http: cfg.HTTPClient}, nil
}

func defaultTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.ResponseHeaderTimeout = 60 * time.Second
	return t
}

// CloseIdleConnections closes the connections the client keeps open
// between requests. Call it when done with a client that is not used for
// the rest of the program.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// Server is the base URL the client talks to.
func (c *Client) Server() string { return c.base.String() }

// endpoint joins the base URL and an API path such as /v1/jobs.
func (c *Client) endpoint(p string, q url.Values) string {
	u := *c.base
	u.Path += p
	u.RawQuery = q.Encode()
	return u.String()
}

// call is one API request: JSON in (body may be nil), JSON out (out may be
// nil), every refusal mapped to *Error.
type call struct {
	method string
	path   string
	query  url.Values
	body   any
	header http.Header
	out    any
	// respHeader, when set, receives the response's headers.
	respHeader *http.Header
}

func (c *Client) do(ctx context.Context, r call) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	var body []byte
	if r.body != nil {
		switch v := r.body.(type) {
		case json.RawMessage:
			body = v
		default:
			var err error
			if body, err = json.Marshal(v); err != nil {
				return fmt.Errorf("encode %s %s request: %w", r.method, r.path, err)
			}
		}
	}
	var waited time.Duration
	for {
		resp, err := c.send(ctx, r, body)
		if err != nil {
			return err
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			if d := retryAfter(resp.Header); waited+d <= c.cfg.RateLimitWait && beforeDeadline(ctx, d) {
				refused := errorFrom(resp)
				resp.Body.Close()
				if err := c.sleep(ctx, d); err != nil {
					if cause := context.Cause(ctx); !errors.Is(cause, context.DeadlineExceeded) {
						return cause
					}
					return refused
				}
				waited += d
				continue
			}
		}
		defer resp.Body.Close()
		return c.read(r, resp)
	}
}

// send makes one attempt of the call.
func (c *Client) send(ctx context.Context, r call, body []byte) (*http.Response, error) {
	var rd io.Reader
	if r.body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.endpoint(r.path, r.query), rd)
	if err != nil {
		return nil, fmt.Errorf("build %s %s request: %w", r.method, r.path, err)
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	return resp, nil
}

// read maps the answer to the call's result or its *Error.
func (c *Client) read(r call, resp *http.Response) error {
	if resp.StatusCode >= 400 {
		return errorFrom(resp)
	}
	if r.respHeader != nil {
		*r.respHeader = resp.Header
	}
	if r.out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(r.out); err != nil {
		return fmt.Errorf("decode the answer to %s %s: %w", r.method, r.path, err)
	}
	return nil
}

// maxRetryAfter caps what retryAfter reads, far above any RateLimitWait,
// so that a huge header cannot overflow a time.Duration.
const maxRetryAfter = 365 * 24 * time.Hour

// retryAfter is how long a 429 asks the client to wait: its Retry-After in
// whole seconds (an HTTP date is not sent by MpegFlow and counts as
// absent), at least 1 s.
func retryAfter(h http.Header) time.Duration {
	// Past int64, ParseInt gives the largest value with its error.
	n, err := strconv.ParseInt(strings.TrimSpace(h.Get("Retry-After")), 10, 64)
	switch {
	case n > int64(maxRetryAfter/time.Second):
		return maxRetryAfter
	case err != nil || n < 1:
		return time.Second
	}
	return time.Duration(n) * time.Second
}

// beforeDeadline: a wait of d would end before the call's deadline, so
// the call could still be sent again (the deadline is the real clock's,
// set by context.WithTimeout).
func beforeDeadline(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return !ok || time.Until(dl) > d
}

// sleep waits d on the client's clock, or until ctx ends (its error).
func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	tk := c.cfg.Clock.NewTicker(d)
	defer tk.Stop()
	select {
	case <-tk.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// transportError says why no answer came: the caller gave up, or the server
// cannot be reached.
func (c *Client) transportError(ctx context.Context, err error) error {
	if ctxErr := context.Cause(ctx); ctxErr != nil && !errors.Is(ctxErr, context.DeadlineExceeded) {
		return ctxErr
	}
	return &UnreachableError{Server: c.base.String(), Err: err}
}
