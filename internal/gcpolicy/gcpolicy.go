// Package gcpolicy sets the garbage collector of the servers' process
// (`mpegflow serve`) for a dispatch path measured in milliseconds.
//
// While the collector marks, its worker takes a quarter of the process's
// processors (on a two-core pod, one of the two for about a third of
// every mark phase), and every goroutine hand-off of a job waits longer
// for a core: at 1,000 jobs a second the mark phases (about ten a second
// at Go's default GOGC=100) carried the whole dispatch tail (design 0019,
// "The tail is the collector"). The servers' live heap is small (about
// 10 MB at that rate), so letting the heap grow to five times it between
// collections costs tens of megabytes and removes three marks in four.
// A memory limit below the container's keeps that growth from ever
// reaching the container's limit: near it, the collector runs as often
// as it must.
package gcpolicy

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"runtime/debug"
	"runtime/metrics"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// Percent is the collector's target (GOGC) the servers run with unless
// the GOGC environment variable sets one: a collection when the heap has
// grown by four times what was live after the last.
const Percent = 400

// LimitRatio is the share of the container's memory limit the process's
// memory limit (GOMEMLIMIT) is set to, unless GOMEMLIMIT is set; the rest
// is headroom for what the Go runtime does not count (the kernel's
// buffers, the binary).
const LimitRatio = 0.9

// Settings are what Apply left in force.
type Settings struct {
	// Percent is the collector's target; -1 when collection is off.
	Percent int
	// Limit is the memory limit in bytes; math.MaxInt64 when none.
	Limit int64
}

// Apply sets the collector's target to Percent unless getenv("GOGC") is
// set, and the memory limit to LimitRatio of provider's (nil: the
// container's cgroup limit) unless GOMEMLIMIT is set or AUTOMEMLIMIT is
// "off" (both read from the process's environment by automemlimit). A
// process without a container limit keeps no memory limit. It logs what
// it set and returns it.
func Apply(getenv func(string) string, provider memlimit.Provider, log *slog.Logger) Settings {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(Percent)
	}
	if provider == nil {
		provider = memlimit.FromCgroup
	}
	_, err := memlimit.Set(memlimit.WithProvider(provider), memlimit.WithRatio(LimitRatio))
	if err != nil {
		// No cgroup to read (not Linux, cgroups not mounted): no limit
		// to stay under, so none is set.
		level := slog.LevelWarn
		if errors.Is(err, memlimit.ErrCgroupsNotSupported) {
			level = slog.LevelInfo
		}
		log.Log(context.Background(), level, "no container memory limit found; the heap is bounded only by GOGC", slog.Any("error", err))
	}
	s := current()
	attrs := []any{slog.Int("gogc", s.Percent), slog.String("memory_limit", "none")}
	if s.Limit != math.MaxInt64 {
		attrs[1] = slog.Int64("memory_limit_bytes", s.Limit)
	}
	log.Info("garbage collector set", attrs...)
	return s
}

// current reads the collector's settings in force.
func current() Settings {
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
