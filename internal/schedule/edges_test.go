package schedule_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/schedule"
)

func at(t *testing.T, loc, s string) time.Time {
	t.Helper()
	l, err := time.LoadLocation(loc)
	require.NoError(t, err)
	v, err := time.ParseInLocation("2006-01-02 15:04", s, l)
	require.NoError(t, err)
	return v
}

func TestEdges(t *testing.T) {
	t.Parallel()
	night := []apiv1.PauseWindow{{Start: "0 0 * * *", End: "0 6 * * *", Timezone: "UTC"}}
	tests := map[string]struct {
		windows    []apiv1.PauseWindow
		now        time.Time
		active     bool
		last, next schedule.Edge
	}{
		"inside a night window": {
			windows: night, now: at(t, "UTC", "2026-12-02 02:00"), active: true,
			last: schedule.Edge{At: at(t, "UTC", "2026-12-02 00:00"), Action: schedule.Pause},
			next: schedule.Edge{At: at(t, "UTC", "2026-12-02 06:00"), Action: schedule.Resume},
		},
		"after the window": {
			windows: night, now: at(t, "UTC", "2026-12-02 14:00"),
			last: schedule.Edge{At: at(t, "UTC", "2026-12-02 06:00"), Action: schedule.Resume},
			next: schedule.Edge{At: at(t, "UTC", "2026-12-03 00:00"), Action: schedule.Pause},
		},
		"an edge is at or before now": {
			windows: night, now: at(t, "UTC", "2026-12-02 06:00"),
			last: schedule.Edge{At: at(t, "UTC", "2026-12-02 06:00"), Action: schedule.Resume},
			next: schedule.Edge{At: at(t, "UTC", "2026-12-03 00:00"), Action: schedule.Pause},
		},
		"a window over midnight": {
			windows: []apiv1.PauseWindow{{Start: "0 22 * * *", End: "0 6 * * *", Timezone: "UTC"}},
			now:     at(t, "UTC", "2026-12-02 03:00"), active: true,
			last: schedule.Edge{At: at(t, "UTC", "2026-12-01 22:00"), Action: schedule.Pause},
			next: schedule.Edge{At: at(t, "UTC", "2026-12-02 06:00"), Action: schedule.Resume},
		},
		"overlapping windows: the first end keeps the pool paused": {
			windows: []apiv1.PauseWindow{
				{Start: "0 0 * * *", End: "0 6 * * *", Timezone: "UTC"},
				{Start: "0 4 * * *", End: "0 8 * * *", Timezone: "UTC"},
			},
			now: at(t, "UTC", "2026-12-02 07:00"), active: true,
			last: schedule.Edge{At: at(t, "UTC", "2026-12-02 06:00"), Action: schedule.Pause},
			next: schedule.Edge{At: at(t, "UTC", "2026-12-02 08:00"), Action: schedule.Resume},
		},
		"weekdays only: the weekend has no edge": {
			windows: []apiv1.PauseWindow{{Start: "0 20 * * 1-5", End: "0 7 * * 1-5", Timezone: "UTC"}},
			// Saturday 2026-12-05 12:00: the last edge was Friday 20:00,
			// the pool stays paused until Monday 07:00.
			now: at(t, "UTC", "2026-12-05 12:00"), active: true,
			last: schedule.Edge{At: at(t, "UTC", "2026-12-04 20:00"), Action: schedule.Pause},
			next: schedule.Edge{At: at(t, "UTC", "2026-12-07 07:00"), Action: schedule.Resume},
		},
		"Paris time, winter (UTC+1)": {
			windows: []apiv1.PauseWindow{{Start: "0 0 * * *", End: "0 6 * * *", Timezone: "Europe/Paris"}},
			now:     at(t, "UTC", "2026-12-01 23:30"), active: true,
			last: schedule.Edge{At: at(t, "UTC", "2026-12-01 23:00"), Action: schedule.Pause},
			next: schedule.Edge{At: at(t, "UTC", "2026-12-02 05:00"), Action: schedule.Resume},
		},
		"Paris time, summer (UTC+2)": {
			windows: []apiv1.PauseWindow{{Start: "0 0 * * *", End: "0 6 * * *", Timezone: "Europe/Paris"}},
			now:     at(t, "UTC", "2026-07-01 22:30"), active: true,
			last: schedule.Edge{At: at(t, "UTC", "2026-07-01 22:00"), Action: schedule.Pause},
			next: schedule.Edge{At: at(t, "UTC", "2026-07-02 04:00"), Action: schedule.Resume},
		},
		"Paris, the night clocks go forward: the window is an hour shorter in real time": {
			// 2026-03-29 02:00 CET becomes 03:00 CEST. Midnight is 23:00
			// UTC, six o'clock is 04:00 UTC.
			windows: []apiv1.PauseWindow{{Start: "0 0 * * *", End: "0 6 * * *", Timezone: "Europe/Paris"}},
			now:     at(t, "UTC", "2026-03-29 03:30"), active: true,
			last: schedule.Edge{At: at(t, "UTC", "2026-03-28 23:00"), Action: schedule.Pause},
			next: schedule.Edge{At: at(t, "UTC", "2026-03-29 04:00"), Action: schedule.Resume},
		},
		"Paris, the night clocks go forward: 02:30 does not exist, so that night has no start": {
			// The previous start was 02:30 CET on the 28th (01:30 UTC), its
			// end 05:00 CET (04:00 UTC); on the 29th only the end fires,
			// at 05:00 CEST (03:00 UTC), and finds the pool running.
			windows: []apiv1.PauseWindow{{Start: "30 2 * * *", End: "0 5 * * *", Timezone: "Europe/Paris"}},
			now:     at(t, "UTC", "2026-03-29 02:00"),
			last:    schedule.Edge{At: at(t, "UTC", "2026-03-28 04:00"), Action: schedule.Resume},
			next:    schedule.Edge{At: at(t, "UTC", "2026-03-29 03:00"), Action: schedule.Resume},
		},
		"Paris, the night clocks go back: 02:30 happens twice, and so does its edge": {
			// 2026-10-25 03:00 CEST becomes 02:00 CET; 02:30 local is
			// first 00:30 UTC, then 01:30 UTC. robfig/cron (and so KEDA's
			// cron trigger) fires at both; the second pause edge finds the
			// pool paused already (it only ends a manual resume made in
			// that hour).
			windows: []apiv1.PauseWindow{{Start: "30 2 * * *", End: "0 5 * * *", Timezone: "Europe/Paris"}},
			now:     at(t, "UTC", "2026-10-25 02:00"), active: true,
			last: schedule.Edge{At: at(t, "UTC", "2026-10-25 01:30"), Action: schedule.Pause},
			next: schedule.Edge{At: at(t, "UTC", "2026-10-25 04:00"), Action: schedule.Resume},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ws := schedule.MustParse(tt.windows)
			assert.Equal(t, tt.active, ws.Active(tt.now), "active")
			last, ok := ws.Last(tt.now)
			require.True(t, ok)
			assert.True(t, tt.last.At.Equal(last.At), "last edge at %s, want %s", last.At, tt.last.At)
			assert.Equal(t, tt.last.Action, last.Action, "last edge action")
			next, ok := ws.Next(tt.now)
			require.True(t, ok)
			assert.True(t, tt.next.At.Equal(next.At), "next edge at %s, want %s", next.At, tt.next.At)
			assert.Equal(t, tt.next.Action, next.Action, "next edge action")
			assert.True(t, ws.Due(last.At.Add(-time.Second), tt.now), "the last edge is due after a time before it")
			assert.False(t, ws.Due(last.At, tt.now), "nothing is due once the last edge is applied")
		})
	}
}

func TestNoWindows(t *testing.T) {
	t.Parallel()
	ws := schedule.MustParse(nil)
	now := time.Now()
	assert.False(t, ws.Active(now))
	_, ok := ws.Last(now)
	assert.False(t, ok)
	_, ok = ws.Next(now)
	assert.False(t, ok)
}

func TestParse(t *testing.T) {
	t.Parallel()
	ok := apiv1.PauseWindow{Start: "0 0 * * *", End: "0 6 * * *", Timezone: "Europe/Paris"}
	many := make([]apiv1.PauseWindow, apiv1.MaxPauseWindows+1)
	for i := range many {
		many[i] = ok
	}
	tests := map[string]struct {
		in     []apiv1.PauseWindow
		fields []string
	}{
		"valid":              {in: []apiv1.PauseWindow{ok}},
		"twenty is the most": {in: many[:apiv1.MaxPauseWindows]},
		"twenty-one":         {in: many, fields: []string{""}},
		"unknown zone":       {in: []apiv1.PauseWindow{{Start: ok.Start, End: ok.End, Timezone: "Mars/Olympus"}}, fields: []string{"[0].timezone"}},
		"no zone":            {in: []apiv1.PauseWindow{{Start: ok.Start, End: ok.End}}, fields: []string{"[0].timezone"}},
		"the machine's zone": {in: []apiv1.PauseWindow{{Start: ok.Start, End: ok.End, Timezone: "Local"}}, fields: []string{"[0].timezone"}},
		"six fields":         {in: []apiv1.PauseWindow{{Start: "0 0 0 * * *", End: ok.End, Timezone: "UTC"}}, fields: []string{"[0].start"}},
		"a descriptor":       {in: []apiv1.PauseWindow{{Start: "@daily", End: ok.End, Timezone: "UTC"}}, fields: []string{"[0].start"}},
		"minute 61":          {in: []apiv1.PauseWindow{{Start: ok.Start, End: "61 6 * * *", Timezone: "UTC"}}, fields: []string{"[0].end"}},
		"a zone inside":      {in: []apiv1.PauseWindow{{Start: "CRON_TZ=UTC 0 0 * * *", End: ok.End, Timezone: "UTC"}}, fields: []string{"[0].start"}},
		"start is end":       {in: []apiv1.PauseWindow{{Start: "0 6 * * *", End: "0  6 * * *", Timezone: "UTC"}}, fields: []string{"[0].end"}},
		"second window bad":  {in: []apiv1.PauseWindow{ok, {Start: "x", End: "y", Timezone: "UTC"}}, fields: []string{"[1].start", "[1].end"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ws, errs := schedule.Parse(tt.in)
			var got []string
			for _, e := range errs {
				got = append(got, e.Field)
			}
			assert.Equal(t, tt.fields, got)
			if tt.fields == nil {
				assert.Equal(t, len(tt.in), ws.Len())
			}
		})
	}
}
