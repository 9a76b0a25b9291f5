package operator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ProbeHandler serves the kubelet's probes: GET /healthz answers 200 while
// s.Live is nil and GET /readyz while s.Ready is nil, else 503 with the
// reason as text. A change of either answer is logged once, at warning
// level when it turns bad.
func ProbeHandler(s *Status, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", &probe{name: "liveness", check: s.Live, log: log})
	mux.Handle("GET /readyz", &probe{name: "readiness", check: s.Ready, log: log})
	return mux
}

type probe struct {
	name  string
	check func() error
	log   *slog.Logger

	mu   sync.Mutex
	last string // last answer's reason, "" when it was ok
	seen bool
}

func (p *probe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	err := p.check()
	reason := ""
	if err != nil {
		reason = err.Error()
	}
	p.mu.Lock()
	changed := !p.seen || reason != p.last
	p.last, p.seen = reason, true
	p.mu.Unlock()
	if changed {
		if err != nil {
			p.log.WarnContext(r.Context(), "operator "+p.name+" probe fails; see the reason, the Lease and the operator's RBAC and database access", "reason", reason)
		} else {
			p.log.InfoContext(r.Context(), "operator "+p.name+" probe passes")
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintln(w, reason)
		return
	}
	_, _ = fmt.Fprintln(w, "ok")
}

// MetricsHandler serves reg in Prometheus' exposition format.
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// serveHTTP serves h on ln until ctx ends, then shuts the server down.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down %s: %w", ln.Addr(), err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	return nil
}
