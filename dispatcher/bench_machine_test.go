package dispatcher

import (
	"crypto/sha256"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The machine's state during a benchmark, so that runs on different days
// can be told apart by more than their results: the same build's dispatch
// p50 at 1,000 jobs/s has been 2.4 ms one day and 3.0–7.7 ms another,
// with more Postgres CPU a job on the slower days (docs/benchmarks.md).

// machineTicks is the machine's CPU time from the first line of
// /proc/stat, in clock ticks (100 Hz): all of it, the part spent busy
// (neither idle nor waiting on I/O) and the part the hypervisor took for
// other guests (steal). ok is false where /proc/stat cannot be read.
type machineTicks struct {
	total, busy, steal int64
	ok                 bool
}

func readMachineTicks() machineTicks {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineTicks{}
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line)
	// cpu user nice system idle iowait irq softirq steal [guest guest_nice]
	if len(f) < 9 || f[0] != "cpu" {
		return machineTicks{}
	}
	var t machineTicks
	for i, s := range f[1:9] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return machineTicks{}
		}
		t.total += v
		switch i {
		case 3, 4: // idle, iowait
		case 7:
			t.steal = v
		default:
			t.busy += v
		}
	}
	t.ok = true
	return t
}

// reportMachine reports, for the ticks between from and to, machine-busy-%
// (the share of all the machine's processors that ran something: what
// the benchmark left idle is 100 minus it) and steal-ms (CPU time the
// hypervisor gave other guests while the benchmark wanted it).
func reportMachine(b *testing.B, from, to machineTicks) {
	if !from.ok || !to.ok || to.total <= from.total {
		return
	}
	b.ReportMetric(100*float64(to.busy-from.busy)/float64(to.total-from.total), "machine-busy-%")
	b.ReportMetric(float64(to.steal-from.steal)*10, "steal-ms")
}

// paceBytes is what measurePace hashes, 32 MiB; chaseSlots is the
// length of the cycle measurePace follows, 8 Mi slots of 4 bytes, more
// than the machine's caches hold.
const (
	paceBytes  = 32 << 20
	chaseSlots = 8 << 20
	chaseSteps = 1 << 21
)

// measurePace times two fixed pieces of work on one goroutine before a
// timed part (the rig is idle then), so that a slower figure is a slower
// or busier machine, not a slower build: hashing paceBytes with SHA-256
// (the processor's own speed; the best of three) and following a random
// cycle through chaseSlots, each step a load that waits on the one
// before (the memory's latency, which other guests' use of the shared
// caches lengthens), as nanoseconds a step.
func measurePace() (hash time.Duration, chaseNs float64) {
	buf := make([]byte, paceBytes)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	hash = time.Duration(math.MaxInt64)
	for range 3 {
		start := time.Now()
		sha256.Sum256(buf)
		hash = min(hash, time.Since(start))
	}
	// A cycle through every slot in a random order (Sattolo's shuffle).
	next := make([]uint32, chaseSlots)
	for i := range next {
		next[i] = uint32(i)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := len(next) - 1; i > 0; i-- {
		j := rng.IntN(i)
		next[i], next[j] = next[j], next[i]
	}
	at := uint32(0)
	start := time.Now()
	for range chaseSteps {
		at = next[at]
	}
	chaseNs = float64(time.Since(start).Nanoseconds()) / chaseSteps
	runtime.KeepAlive(at)
	return hash, chaseNs
}
