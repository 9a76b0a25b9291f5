package gcpolicy

import (
	"errors"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/stretchr/testify/assert"
)

// TestApply: the servers' collector target and memory limit, and what the
// operator's environment overrides. Not parallel: the settings are the
// process's.
func TestApply(t *testing.T) {
	const (
		mib       = int64(1) << 20
		container = 1000 * mib
		preset    = 4242 * mib // a limit in force before Apply
	)
	noEnv := func(string) string { return "" }
	tests := []struct {
		name        string
		getenv      func(string) string
		env         map[string]string // the process's environment, read by automemlimit
		gogcBefore  int               // as the runtime read GOGC at start
		provider    memlimit.Provider
		wantPercent int
		wantLimit   int64
	}{
		{"defaults in a container", noEnv, nil, 100, memlimit.Limit(uint64(container)), Percent, int64(float64(container) * LimitRatio)},
		{"no container limit", noEnv, nil, 100, func() (uint64, error) { return 0, memlimit.ErrNoLimit }, Percent, math.MaxInt64},
		{"GOGC chosen by the operator", func(k string) string {
			if k == "GOGC" {
				return "150"
			}
			return ""
		}, nil, 150, memlimit.Limit(uint64(container)), 150, int64(float64(container) * LimitRatio)},
		{"GOMEMLIMIT chosen by the operator", noEnv, map[string]string{"GOMEMLIMIT": "4242MiB"}, 100, memlimit.Limit(uint64(container)), Percent, preset},
		{"AUTOMEMLIMIT off", noEnv, map[string]string{"AUTOMEMLIMIT": "off"}, 100, memlimit.Limit(uint64(container)), Percent, preset},
		{"cgroup unreadable", noEnv, nil, 100, func() (uint64, error) { return 0, errors.New("permission denied") }, Percent, preset},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prevPercent, prevLimit := debug.SetGCPercent(tt.gogcBefore), debug.SetMemoryLimit(preset)
			t.Cleanup(func() { debug.SetGCPercent(prevPercent); debug.SetMemoryLimit(prevLimit) })
			for _, k := range []string{"GOMEMLIMIT", "AUTOMEMLIMIT"} {
				t.Setenv(k, "") // restored after the test
				if v, ok := tt.env[k]; ok {
					t.Setenv(k, v)
				} else {
					os.Unsetenv(k)
				}
			}
			got := Apply(tt.getenv, tt.provider, slog.New(slog.DiscardHandler))
			assert.Equal(t, Settings{Percent: tt.wantPercent, Limit: tt.wantLimit}, got)
			assert.Equal(t, tt.wantPercent, debug.SetGCPercent(tt.wantPercent), "in force")
			assert.Equal(t, tt.wantLimit, debug.SetMemoryLimit(-1), "in force")
		})
	}
}
