package telemetry

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

type fleetFake struct{}

func (fleetFake) FleetState(context.Context) (FleetState, error) {
	return FleetState{
		InFlight:   map[string]int{"default": 1},
		QueueDepth: map[string]int64{"default": 2},
		Paused:     map[string]bool{"default": false},
		Workers:    map[string]map[string]int{"default": {"online": 3}},
	}, nil
}

type circuitsFake struct{}

func (circuitsFake) WebhookFailureCounts(context.Context) (map[uuid.UUID]int, error) {
	return map[uuid.UUID]int{uuid.New(): 4}, nil
}

// TestReferenceNamesAreRegistered gathers a fully wired registry: every
// name the reference document fixes is exported, and every exported
// mpegflow_ name is either a reference name or one of ours on purpose.
func TestReferenceNamesAreRegistered(t *testing.T) {
	t.Parallel()
	m := New()
	log := slog.New(slog.DiscardHandler)
	m.RegisterFleet(fleetFake{}, log)
	m.RegisterWebhookCircuits(circuitsFake{}, log)
	m.EventDispatch.Observe(0.001)
	m.GRPCRequests.WithLabelValues("Claim").Inc()
	m.GRPCDuration.WithLabelValues("Claim").Observe(0.002)
	m.EncodeSeconds.WithLabelValues("org", "cpu").Add(1)

	families, err := m.Registry.Gather()
	require.NoError(t, err)
	var got []string
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "mpegflow_") {
			got = append(got, f.GetName())
		}
	}
	require.Subset(t, got, ReferenceNames)
	require.Subset(t, got, ControlPlaneNames)
	require.ElementsMatch(t, slices.Concat([]string{"mpegflow_encode_seconds_total", "mpegflow_claim_wakeups_total", "mpegflow_claim_handoffs_total"}, ControlPlaneNames, ReferenceNames), got,
		"a new mpegflow_ metric is either in the reference list, in the control plane's or named here")
}

// TestOperatorNamesAreRegistered: the operator's registry exports exactly
// OperatorNames among mpegflow_ names, before any pass has run (so
// dashboards and alerts see the series from the operator's start).
func TestOperatorNamesAreRegistered(t *testing.T) {
	t.Parallel()
	m := NewOperator()
	families, err := m.Registry.Gather()
	require.NoError(t, err)
	var got []string
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "mpegflow_") {
			got = append(got, f.GetName())
		}
	}
	require.ElementsMatch(t, OperatorNames, got)
	require.Empty(t, slices.DeleteFunc(slices.Clone(OperatorNames), func(n string) bool { return !slices.Contains(ReferenceNames, n) }),
		"operator names are not reference names: the server does not export them")
}
