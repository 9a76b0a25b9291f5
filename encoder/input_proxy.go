package encoder

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	neturl "net/url"
	"time"

	"github.com/mpegflow/mpegflow/encoder/ffmpeg"
	"github.com/mpegflow/mpegflow/internal/netguard"
)

// proxiedHeaders are the response headers the input proxy passes on: what
// FFmpeg's HTTP reader needs to seek.
var proxiedHeaders = []string{"Content-Length", "Content-Range", "Accept-Ranges", "Content-Type", "Last-Modified", "ETag"}

// serveInput serves a customer's input URL to FFmpeg on a loopback address
// of this pod, so a chunk task reads only its range of the input (FFmpeg's
// range requests on the proxy) instead of downloading all of it, while
// every connection to the customer's server still goes through the SSRF
// guard (InputHTTP): FFmpeg never resolves or dials the customer's host
// itself. Only GET and HEAD of one unguessable path are served, and only
// the Range header is forwarded. It returns the URL to give FFmpeg and a
// function that stops the proxy.
func (w *Worker) serveInput(ctx context.Context, log *slog.Logger, target string) (string, func(), error) {
	u, err := neturl.Parse(target)
	if err != nil {
		return "", nil, &ffmpeg.InputError{Msg: "the input URL is not usable: " + err.Error()}
	}
	if err := w.cfg.Guard.CheckScheme(u); err != nil {
		return "", nil, &ffmpeg.InputError{Msg: "the input URL was " + err.Error()}
	}
	token := make([]byte, 16)
	if _, err := rand.Read(token); err != nil {
		return "", nil, fmt.Errorf("input proxy: %w", err)
	}
	path := "/" + hex.EncodeToString(token) + "/input"
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("input proxy: %w", err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			http.NotFound(rw, r)
			return
		}
		w.proxyInput(rw, r, target, log)
	})}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.WarnContext(ctx, "input proxy stopped", slog.Any("error", err))
		}
	}()
	return "http://" + ln.Addr().String() + path, func() { _ = srv.Close() }, nil
}

// proxyInput forwards one of FFmpeg's requests to the customer's URL
// through the guarded client and copies the answer back, at most
// MaxInputBytes of it.
func (w *Worker) proxyInput(rw http.ResponseWriter, r *http.Request, target string, log *slog.Logger) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, target, nil)
	if err != nil {
		http.Error(rw, "input proxy: the input URL is not usable", http.StatusBadGateway)
		return
	}
	if rg := r.Header.Get("Range"); rg != "" {
		req.Header.Set("Range", rg)
	}
	resp, err := w.cfg.InputHTTP.Do(req)
	if err != nil {
		msg := "the input could not be read"
		if rf := netguard.Refusal(err); rf != nil {
			msg = "the input URL was " + rf.Error()
		}
		log.WarnContext(r.Context(), "input proxy: "+msg, slog.Any("error", err))
		http.Error(rw, msg, http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for _, h := range proxiedHeaders {
		if v := resp.Header.Get(h); v != "" {
			rw.Header().Set(h, v)
		}
	}
	rw.WriteHeader(resp.StatusCode)
	// FFmpeg closes its connection when it has read what it needs; the copy
	// then ends and the customer's response with it.
	_, _ = io.Copy(rw, io.LimitReader(resp.Body, w.cfg.MaxInputBytes))
}
