package gcpolicy

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/stretchr/testify/assert"
)

// TestApply: the servers' collector target and memory limit, what the
// operator's environment overrides, and what is logged when no limit is
// set. Not parallel: the settings and the environment are the process's.
func TestApply(t *testing.T) {
	const (
		mib       = int64(1) << 20
		container = 1000 * mib
		preset    = 4242 * mib // a limit in force before Apply
	)
	limited := memlimit.Limit(uint64(container))
	tests := []struct {
		name        string
		env         map[string]string // GOGC, GOMEMLIMIT, AUTOMEMLIMIT; unset when absent
		gogcBefore  int               // as the runtime read GOGC at start
		provider    memlimit.Provider
		wantPercent int
		wantLimit   int64
		wantLog     string // a level and words of the log, "" for none but the settings
	}{
		{"defaults in a container", nil, 100, limited, Percent, int64(float64(container) * LimitRatio), ""},
		{"no limit in the cgroup", nil, 100, func() (uint64, error) { return 0, memlimit.ErrNoLimit }, Percent, math.MaxInt64, ""},
		{"not in a cgroup", nil, 100, func() (uint64, error) { return 0, memlimit.ErrNoCgroup }, Percent, preset, "level=INFO msg=\"not in a cgroup"},
		{"cgroup unreadable", nil, 100, func() (uint64, error) { return 0, errors.New("permission denied") }, Percent, preset, "level=WARN msg=\"memory limit not set"},
		{"GOGC chosen by the operator", map[string]string{"GOGC": "150"}, 150, limited, 150, int64(float64(container) * LimitRatio), ""},
		{"GOMEMLIMIT chosen by the operator", map[string]string{"GOMEMLIMIT": "4242MiB"}, 100, limited, Percent, preset, ""},
		{"AUTOMEMLIMIT off", map[string]string{"AUTOMEMLIMIT": "off"}, 100, limited, Percent, preset, ""},
		{"AUTOMEMLIMIT another share", map[string]string{"AUTOMEMLIMIT": "0.5"}, 100, limited, Percent, container / 2, ""},
		{"AUTOMEMLIMIT unreadable", map[string]string{"AUTOMEMLIMIT": "90%"}, 100, limited, Percent, preset, "level=WARN msg=\"memory limit not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := Current()
			t.Cleanup(func() { Restore(before) })
			Restore(Settings{Percent: tt.gogcBefore, Limit: preset})
			for _, k := range []string{"GOGC", "GOMEMLIMIT", "AUTOMEMLIMIT"} {
				t.Setenv(k, "") // restored after the test
				if v, ok := tt.env[k]; ok {
					t.Setenv(k, v)
				} else {
					assert.NoError(t, os.Unsetenv(k))
				}
			}
			var logs bytes.Buffer
			got := Apply(t.Context(), tt.provider, slog.New(slog.NewTextHandler(&logs, nil)))

			assert.Equal(t, Settings{Percent: tt.wantPercent, Limit: tt.wantLimit}, got)
			assert.Equal(t, got, Current(), "in force")
			if tt.wantLog != "" {
				assert.Contains(t, logs.String(), tt.wantLog)
			} else {
				assert.NotContains(t, logs.String(), "level=WARN")
			}
			assert.Contains(t, logs.String(), fmt.Sprintf("gogc=%d", tt.wantPercent))
		})
	}
}
