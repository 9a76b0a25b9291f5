package operator

import (
	"cmp"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/mpegflow/mpegflow/internal/telemetry"
)

// defaultUnreadyAfterPeriods is StatusConfig.UnreadyAfterPeriods' default:
// one failed pass is common (an apiserver restart, a conflict), three in a
// row is not.
const defaultUnreadyAfterPeriods = 3

// StatusConfig tunes what Status calls ready and live.
type StatusConfig struct {
	// Period is the reconcile period (required): a leader passes at least
	// once per period.
	Period time.Duration
	// LeaseDuration is the leader Lease's duration (default 30 s): leader
	// election is healthy while the Lease was read or written within it.
	LeaseDuration time.Duration
	// UnreadyAfterPeriods: the leader is unready once no pass has succeeded
	// for this many periods since it started leading (default 3), and not
	// live once one pass has been running for twice as long.
	UnreadyAfterPeriods int
}

// Status is what the operator tells the kubelet and Prometheus about
// itself. Leader election and the reconciler report to it (it is their
// LeaderObserver and PassObserver); /readyz, /healthz and the metrics read
// it. Its clock is injected so tests decide what "too long ago" is.
type Status struct {
	cfg   StatusConfig
	clock clock.PassiveClock
	m     *telemetry.OperatorMetrics

	mu           sync.Mutex
	leaseContact time.Time // last successful read or write of the Lease
	leaseErr     error     // last failed one, cleared by a success
	leading      bool
	leadingSince time.Time
	lastSuccess  time.Time
	lastErr      error     // last pass's error, nil after a success
	passStarted  time.Time // zero when no pass runs
}

var (
	_ LeaderObserver = (*Status)(nil)
	_ PassObserver   = (*Status)(nil)
)

// NewStatus validates cfg and returns a Status that updates m.
func NewStatus(cfg StatusConfig, m *telemetry.OperatorMetrics, clk clock.PassiveClock) (*Status, error) {
	if cfg.Period <= 0 {
		return nil, errors.New("operator: status needs the reconcile period")
	}
	if cfg.UnreadyAfterPeriods < 0 {
		return nil, fmt.Errorf("operator: UnreadyAfterPeriods %d: want at least 1 (0: the default)", cfg.UnreadyAfterPeriods)
	}
	cfg.LeaseDuration = cmp.Or(cfg.LeaseDuration, 30*time.Second)
	cfg.UnreadyAfterPeriods = cmp.Or(cfg.UnreadyAfterPeriods, defaultUnreadyAfterPeriods)
	return &Status{cfg: cfg, clock: clk, m: m}, nil
}

// LeaseContact records one read or write of the Lease by leader election:
// err is nil when the apiserver answered as it should (the Lease held by
// another replica is an answer; RBAC denial or an unreachable apiserver is
// not).
func (s *Status) LeaseContact(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.leaseErr = err
		return
	}
	s.leaseContact, s.leaseErr = s.clock.Now(), nil
}

// SetLeading records that this replica started or stopped leading.
func (s *Status) SetLeading(leading bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leading, s.leadingSince = leading, s.clock.Now()
	s.passStarted = time.Time{}
	if leading {
		s.m.IsLeader.Set(1)
	} else {
		s.m.IsLeader.Set(0)
	}
}

// PassStarted records the start of a reconcile pass.
func (s *Status) PassStarted() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.passStarted = s.clock.Now()
}

// PassFinished records a pass's result: its duration, its result and, on
// success, the time of the last success.
func (s *Status) PassFinished(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	if !s.passStarted.IsZero() {
		s.m.ReconcileDuration.Observe(now.Sub(s.passStarted).Seconds())
	}
	s.passStarted = time.Time{}
	s.lastErr = err
	if err != nil {
		s.m.ReconcileTotal.WithLabelValues(telemetry.ReconcileError).Inc()
		return
	}
	s.lastSuccess = now
	s.m.ReconcileTotal.WithLabelValues(telemetry.ReconcileSuccess).Inc()
	s.m.LastSuccess.Set(float64(now.UnixNano()) / 1e9)
}

// PassInterrupted records a pass cut short because its context ended (the
// process stops or leadership was lost): neither a success nor a failure.
func (s *Status) PassInterrupted() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.passStarted = time.Time{}
}

// Ready is nil while the replica does its part: leader election reaches
// the Lease (whether this replica leads or stands by), and, when it leads,
// a pass has succeeded within UnreadyAfterPeriods periods (counted from
// when it started leading, so a new leader has that long for its first
// success). Otherwise the error says why, for /readyz and the logs.
func (s *Status) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	if s.leaseContact.IsZero() {
		if s.leaseErr != nil {
			return fmt.Errorf("leader election has not reached its Lease: %w", s.leaseErr)
		}
		return errors.New("leader election has not reached its Lease yet")
	}
	if age := now.Sub(s.leaseContact); age > s.cfg.LeaseDuration {
		if s.leaseErr != nil {
			return fmt.Errorf("leader election has not reached its Lease for %s: %w", age, s.leaseErr)
		}
		return fmt.Errorf("leader election has not reached its Lease for %s", age)
	}
	if !s.leading {
		return nil
	}
	since := s.leadingSince
	if s.lastSuccess.After(since) {
		since = s.lastSuccess
	}
	limit := time.Duration(s.cfg.UnreadyAfterPeriods) * s.cfg.Period
	if age := now.Sub(since); age > limit {
		if s.lastErr != nil {
			return fmt.Errorf("leading, but no reconcile pass succeeded for %s (more than %d periods): %w", age, s.cfg.UnreadyAfterPeriods, s.lastErr)
		}
		return fmt.Errorf("leading, but no reconcile pass succeeded for %s (more than %d periods)", age, s.cfg.UnreadyAfterPeriods)
	}
	return nil
}

// Live is nil unless one reconcile pass has been running for more than
// twice UnreadyAfterPeriods periods: the leader is wedged (a call that never
// returns) and a restart hands the Lease to a replica that works. Failing
// passes do not make the operator unlive; restarting would not fix them.
func (s *Status) Live() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.passStarted.IsZero() {
		return nil
	}
	limit := 2 * time.Duration(s.cfg.UnreadyAfterPeriods) * s.cfg.Period
	if age := s.clock.Now().Sub(s.passStarted); age > limit {
		return fmt.Errorf("one reconcile pass has been running for %s (more than %s): wedged", age, limit)
	}
	return nil
}
