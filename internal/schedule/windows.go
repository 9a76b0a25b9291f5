package schedule

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

// parser reads exactly five fields (minute hour day-of-month month
// day-of-week): no seconds, no @descriptors, as KEDA's cron trigger.
var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// window is one parsed pause window: the pool is paused from each firing of
// start until the next firing of end.
type window struct {
	start, end *cron.SpecSchedule
}

// Windows are a pool's parsed pause windows. The zero value has none: it
// never pauses and has no edges.
type Windows struct {
	ws []window
}

// Len is the number of windows.
func (w Windows) Len() int { return len(w.ws) }

// Parse parses a pool's pause windows. It answers field errors whose paths
// are relative to the list ("[1].start"); the caller prefixes them with the
// list's own path (FieldErrors.Prefixed("pause_windows")).
func Parse(in []apiv1.PauseWindow) (Windows, apiv1.FieldErrors) {
	var errs apiv1.FieldErrors
	if len(in) > apiv1.MaxPauseWindows {
		errs.Add("", "at most %d windows", apiv1.MaxPauseWindows)
	}
	out := Windows{ws: make([]window, 0, len(in))}
	for i, w := range in {
		f := fmt.Sprintf("[%d]", i)
		loc, err := time.LoadLocation(w.Timezone)
		if err != nil || w.Timezone == "" || w.Timezone == "Local" {
			errs.Add(f+".timezone", "must be an IANA time zone such as Europe/Paris or UTC")
			loc = nil
		}
		start, startErr := parseSpec(w.Start)
		if startErr != "" {
			errs.Add(f+".start", "%s", startErr)
		}
		end, endErr := parseSpec(w.End)
		if endErr != "" {
			errs.Add(f+".end", "%s", endErr)
		}
		if startErr == "" && endErr == "" && strings.Join(strings.Fields(w.Start), " ") == strings.Join(strings.Fields(w.End), " ") {
			errs.Add(f+".end", "must differ from start (a window that ends when it starts pauses nothing)")
		}
		if loc == nil || start == nil || end == nil {
			continue
		}
		start.Location, end.Location = loc, loc
		out.ws = append(out.ws, window{start: start, end: end})
	}
	if len(errs) > 0 {
		return Windows{}, errs
	}
	return out, nil
}

// MustParse is Parse for windows already validated (read back from the
// store, or in tests); it panics on an error.
func MustParse(in []apiv1.PauseWindow) Windows {
	w, errs := Parse(in)
	if errs != nil {
		panic(errs)
	}
	return w
}

func parseSpec(expr string) (*cron.SpecSchedule, string) {
	const want = `must be a five-field cron expression (minute hour day-of-month month day-of-week) such as "0 22 * * 1-5"`
	if len(strings.Fields(expr)) != 5 || strings.Contains(expr, "TZ=") {
		return nil, want
	}
	s, err := parser.Parse(expr)
	if err != nil {
		return nil, want + ": " + err.Error()
	}
	spec, ok := s.(*cron.SpecSchedule)
	if !ok {
		return nil, want
	}
	return spec, ""
}
