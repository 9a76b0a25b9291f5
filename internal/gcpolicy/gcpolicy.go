// Package gcpolicy sets the garbage collector of the servers' process
// (`mpegflow serve`) for a dispatch path measured in milliseconds.
//
// While the collector marks, its background worker takes a quarter of
// the process's processors (with two, one of them for a third to two
// thirds of each mark phase), and every goroutine hand-off of a job
// waits longer for a processor: at 1,000 jobs a second in the
// benchmark, the mark phases (about ten a second at Go's default
// GOGC=100) carried the dispatch tail (design 0019, "The tail is the
// collector"). The servers' live heap is small (about 9 MB at that
// rate), so letting the heap grow to five times it between collections
// costs tens of megabytes and removes three collections in four. A
// memory limit below the container's keeps that growth from reaching
// the container's limit: near it, the collector runs as often as it
// must.
package gcpolicy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// Percent is the collector's target (GOGC) the servers run with unless
// the GOGC environment variable sets one: a collection when the heap has
// grown by four times what was live after the last.
const Percent = 400

// LimitRatio is the share of the container's memory limit the process's
// memory limit (GOMEMLIMIT) is set to, unless GOMEMLIMIT is set or
// AUTOMEMLIMIT sets another share; the rest is headroom for what the Go
// runtime does not count (the kernel's buffers, the binary).
const LimitRatio = 0.9

// Settings are the collector's settings in force.
type Settings struct {
	// Percent is the collector's target; -1 when collection is off.
	Percent int
	// Limit is the memory limit in bytes; math.MaxInt64 when none.
	Limit int64
}

// Apply sets the collector's target to Percent unless the environment
// sets GOGC, and the memory limit to LimitRatio (or AUTOMEMLIMIT's share;
// "off": none) of provider's limit (nil: the process's cgroup memory
// limit) unless the environment sets GOMEMLIMIT. Where the cgroup sets no
// limit (outside a container, or one run without a memory limit) no
// memory limit is set. It logs what is in force and returns it.
func Apply(ctx context.Context, provider memlimit.Provider, log *slog.Logger) Settings {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(Percent)
	}
	if provider == nil {
		provider = memlimit.FromCgroup
	}
	if _, err := memlimit.Set(memlimit.WithProvider(provider), memlimit.WithRatio(LimitRatio)); err != nil {
		if errors.Is(err, memlimit.ErrCgroupsNotSupported) || errors.Is(err, memlimit.ErrNoCgroup) {
			log.InfoContext(ctx, "not in a cgroup: no container memory limit to stay under", slog.Any("error", err))
		} else {
			log.WarnContext(ctx, "memory limit not set; the heap is bounded only by GOGC: set GOMEMLIMIT, or correct AUTOMEMLIMIT (a share in (0, 1], or off)",
				slog.Any("error", err))
		}
	}
	s := Current()
	log.InfoContext(ctx, "garbage collector set", slog.Int("gogc", s.Percent), slog.String("memory_limit", limitText(s.Limit)))
	return s
}

// Current reads the collector's settings in force.
func Current() Settings {
	ss := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	metrics.Read(ss)
	s := Settings{Percent: -1, Limit: math.MaxInt64}
	if ss[0].Value.Kind() == metrics.KindUint64 && ss[0].Value.Uint64() <= math.MaxInt32 {
		s.Percent = int(ss[0].Value.Uint64()) // beyond: collection is off
	}
	if ss[1].Value.Kind() == metrics.KindUint64 {
		s.Limit = int64(min(ss[1].Value.Uint64(), math.MaxInt64))
	}
	return s
}

// Restore puts s back in force.
func Restore(s Settings) {
	debug.SetGCPercent(s.Percent)
	debug.SetMemoryLimit(s.Limit)
}

// limitText is a memory limit for a log line.
func limitText(limit int64) string {
	if limit == math.MaxInt64 {
		return "none"
	}
	return fmt.Sprintf("%d MiB", limit>>20)
}
