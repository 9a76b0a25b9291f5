package operator

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/mpegflow/mpegflow/internal/telemetry"
)

const testPeriod = 10 * time.Second

var epoch = time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)

func newTestStatus(t *testing.T, cfg StatusConfig) (*Status, *testingclock.FakePassiveClock, *telemetry.OperatorMetrics) {
	t.Helper()
	clk := testingclock.NewFakePassiveClock(epoch)
	m := telemetry.NewOperator()
	cfg.Period = testPeriod
	s, err := NewStatus(cfg, m, clk)
	require.NoError(t, err)
	return s, clk, m
}

// TestStatusReadiness walks Status through leader election and reconcile
// events on a fake clock; after each step Ready is nil, or an error that
// contains want.
func TestStatusReadiness(t *testing.T) {
	t.Parallel()
	type step struct {
		name string
		do   func(s *Status, clk *testingclock.FakePassiveClock)
		want string // "" means ready
	}
	advance := func(d time.Duration) func(*Status, *testingclock.FakePassiveClock) {
		return func(_ *Status, clk *testingclock.FakePassiveClock) { clk.SetTime(clk.Now().Add(d)) }
	}
	// renewEvery advances d in lease renewals, as a healthy elector does.
	renewEvery := func(d time.Duration) func(*Status, *testingclock.FakePassiveClock) {
		return func(s *Status, clk *testingclock.FakePassiveClock) {
			for end := clk.Now().Add(d); clk.Now().Before(end); {
				clk.SetTime(clk.Now().Add(time.Second))
				s.LeaseContact(nil)
			}
		}
	}
	contact := func(err error) func(*Status, *testingclock.FakePassiveClock) {
		return func(s *Status, _ *testingclock.FakePassiveClock) { s.LeaseContact(err) }
	}
	leading := func(b bool) func(*Status, *testingclock.FakePassiveClock) {
		return func(s *Status, _ *testingclock.FakePassiveClock) { s.SetLeading(b) }
	}
	pass := func(err error) func(*Status, *testingclock.FakePassiveClock) {
		return func(s *Status, clk *testingclock.FakePassiveClock) {
			s.PassStarted()
			clk.SetTime(clk.Now().Add(time.Second))
			s.PassFinished(err)
		}
	}
	forbidden := errors.New(`leases.coordination.k8s.io "mpegflow-operator" is forbidden`)
	applyFailed := errors.New("apply ScaledJob mpegflow-pool-x: connection refused")

	for name, tc := range map[string]struct {
		cfg   StatusConfig
		steps []step
	}{
		"before the elector reaches the Lease": {steps: []step{
			{"new", func(*Status, *testingclock.FakePassiveClock) {}, "has not reached its Lease yet"},
			{"an hour later", advance(time.Hour), "has not reached its Lease yet"},
		}},
		"a follower denied the Lease (RBAC)": {steps: []step{
			{"forbidden", contact(forbidden), "is forbidden"},
			{"still forbidden", contact(forbidden), "is forbidden"},
			{"RBAC fixed", contact(nil), ""},
		}},
		"a healthy follower, then the apiserver unreachable": {steps: []step{
			{"lease read", contact(nil), ""},
			{"renewing for an hour", renewEvery(time.Hour), ""},
			{"a failed read within the lease duration", contact(errors.New("connection refused")), ""},
			{"no answer for longer than the lease", advance(31 * time.Second), "connection refused"},
			{"answers again", contact(nil), ""},
		}},
		"a leader failing, then succeeding": {steps: []step{
			{"lease taken", contact(nil), ""},
			{"leading, no pass yet", leading(true), ""},
			{"a failed pass", pass(applyFailed), ""},
			{"failing for 3 periods exactly", renewEvery(3*testPeriod - time.Second), ""},
			{"failing for longer than 3 periods", renewEvery(time.Second), "connection refused"},
			{"another failure", pass(applyFailed), "no reconcile pass succeeded"},
			{"a success", pass(nil), ""},
			{"3 periods after the success", renewEvery(3 * testPeriod), ""},
			{"longer, without a pass (wedged)", renewEvery(time.Second), "no reconcile pass succeeded for 31s"},
			{"leadership lost: standing by is ready", leading(false), ""},
		}},
		"a new leader gets N periods from when it started leading": {steps: []step{
			{"lease read", contact(nil), ""},
			{"a success long ago, then following", pass(nil), ""},
			{"an hour of following", renewEvery(time.Hour), ""},
			{"leading", leading(true), ""},
			{"one failed pass", pass(applyFailed), ""},
			{"N periods later", renewEvery(3*testPeriod + time.Second), "connection refused"},
		}},
		"N is configurable": {cfg: StatusConfig{UnreadyAfterPeriods: 1}, steps: []step{
			{"lease taken", contact(nil), ""},
			{"leading", leading(true), ""},
			{"one period", renewEvery(testPeriod), ""},
			{"longer than one period", renewEvery(time.Second), "more than 1 periods"},
		}},
		"the lease duration is configurable": {cfg: StatusConfig{LeaseDuration: 5 * time.Second}, steps: []step{
			{"lease read", contact(nil), ""},
			{"5s later", advance(5 * time.Second), ""},
			{"6s later", advance(time.Second), "has not reached its Lease for 6s"},
		}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, clk, _ := newTestStatus(t, tc.cfg)
			for _, st := range tc.steps {
				st.do(s, clk)
				err := s.Ready()
				if tc := st.want; tc == "" {
					require.NoError(t, err, st.name)
				} else {
					require.ErrorContains(t, err, tc, st.name)
				}
			}
		})
	}
}

// TestStatusLiveness: only a pass that never returns makes the operator
// unlive, after twice UnreadyAfterPeriods periods; failing passes do not.
func TestStatusLiveness(t *testing.T) {
	t.Parallel()
	s, clk, _ := newTestStatus(t, StatusConfig{})
	require.NoError(t, s.Live(), "a new operator is live")
	s.SetLeading(true)
	for range 10 {
		s.PassStarted()
		clk.SetTime(clk.Now().Add(testPeriod))
		s.PassFinished(errors.New("forbidden"))
	}
	require.NoError(t, s.Live(), "failing passes keep it live: a restart would not fix them")

	s.PassStarted()
	clk.SetTime(clk.Now().Add(6 * testPeriod))
	require.NoError(t, s.Live(), "a pass of exactly 2×3 periods")
	clk.SetTime(clk.Now().Add(time.Second))
	require.ErrorContains(t, s.Live(), "has been running for 1m1s")
	s.PassInterrupted()
	require.NoError(t, s.Live(), "an interrupted pass no longer runs")

	s.PassStarted()
	clk.SetTime(clk.Now().Add(time.Hour))
	s.SetLeading(false)
	require.NoError(t, s.Live(), "a replica that stopped leading runs no pass")
}

// TestStatusMetrics: each event moves the operator's metrics; durations
// come from the injected clock, so they are exact.
func TestStatusMetrics(t *testing.T) {
	t.Parallel()
	s, clk, m := newTestStatus(t, StatusConfig{})
	require.Equal(t, 0.0, sample(t, m, "mpegflow_operator_is_leader"))
	s.SetLeading(true)
	require.Equal(t, 1.0, sample(t, m, "mpegflow_operator_is_leader"))

	s.PassStarted()
	clk.SetTime(clk.Now().Add(1500 * time.Millisecond))
	s.PassFinished(nil)
	success := clk.Now()
	s.PassStarted()
	clk.SetTime(clk.Now().Add(2 * time.Second))
	s.PassFinished(errors.New("apply failed"))
	s.PassStarted()
	clk.SetTime(clk.Now().Add(time.Second))
	s.PassInterrupted()

	require.Equal(t, 1.0, sample(t, m, `mpegflow_operator_reconcile_total{result="success"}`))
	require.Equal(t, 1.0, sample(t, m, `mpegflow_operator_reconcile_total{result="error"}`))
	require.Equal(t, float64(success.UnixNano())/1e9, sample(t, m, "mpegflow_operator_last_success_timestamp_seconds"), "the failed pass left the last success alone")
	require.Equal(t, 2.0, sample(t, m, "mpegflow_operator_reconcile_duration_seconds_count"), "the interrupted pass is not timed")
	require.Equal(t, 3.5, sample(t, m, "mpegflow_operator_reconcile_duration_seconds_sum"))
	require.Equal(t, 0.0, sample(t, m, `mpegflow_operator_reconcile_duration_seconds_bucket{le="1.28"}`))
	require.Equal(t, 2.0, sample(t, m, `mpegflow_operator_reconcile_duration_seconds_bucket{le="2.56"}`))

	s.SetLeading(false)
	require.Equal(t, 0.0, sample(t, m, "mpegflow_operator_is_leader"))
}

func TestNewStatusValidates(t *testing.T) {
	t.Parallel()
	m := telemetry.NewOperator()
	clk := testingclock.NewFakePassiveClock(epoch)
	_, err := NewStatus(StatusConfig{}, m, clk)
	require.ErrorContains(t, err, "period")
	_, err = NewStatus(StatusConfig{Period: time.Second, UnreadyAfterPeriods: -1}, m, clk)
	require.ErrorContains(t, err, "UnreadyAfterPeriods")
}

// TestProbeHandler: /readyz and /healthz answer 503 with the reason while
// the check fails and 200 "ok" once it passes; other paths are 404.
func TestProbeHandler(t *testing.T) {
	t.Parallel()
	s, clk, _ := newTestStatus(t, StatusConfig{})
	srv := httptest.NewServer(ProbeHandler(s, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	code, body := get("/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "has not reached its Lease yet")
	s.LeaseContact(nil)
	code, body = get("/readyz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", body)

	s.SetLeading(true)
	s.PassStarted()
	clk.SetTime(clk.Now().Add(time.Hour))
	s.LeaseContact(nil)
	code, body = get("/healthz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "wedged")
	code, _ = get("/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code, "a wedged leader is not ready either")
	s.PassFinished(nil)
	code, _ = get("/healthz")
	require.Equal(t, http.StatusOK, code)
	code, _ = get("/readyz")
	require.Equal(t, http.StatusOK, code)
	code, _ = get("/metrics")
	require.Equal(t, http.StatusNotFound, code, "metrics are on their own port")
}

// scrape is what Prometheus reads from the operator's metrics endpoint.
func scrape(t *testing.T, m *telemetry.OperatorMetrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	MetricsHandler(m.Registry).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	return rec.Body.String()
}

// sample is the value of one series in a scrape, e.g.
// `mpegflow_operator_reconcile_total{result="error"}`.
func sample(t *testing.T, m *telemetry.OperatorMetrics, series string) float64 {
	t.Helper()
	text := scrape(t, m)
	match := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
	require.NotNil(t, match, "no series %s in the scrape:\n%s", series, text)
	v, err := strconv.ParseFloat(match[1], 64)
	require.NoError(t, err)
	return v
}
