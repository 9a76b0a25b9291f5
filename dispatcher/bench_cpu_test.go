package dispatcher

import (
	"bytes"
	"context"
	"io"
	"os"
	"runtime/pprof"
	"testing"

	"github.com/google/pprof/profile"
)

// The benchmark process holds both the servers (the API and the
// coordinator) and the clients that stand in for customers and pods, so
// its CPU time (cpu-us/job) is theirs together. A CPU profile of the timed
// part splits it: the clients' goroutines run under a pprof label
// (asClient), which every goroutine they start inherits, the HTTP
// transport's and the gRPC connection's among them. What carries no label
// counts as the servers': their handlers, and also the runtime's own work
// that has no goroutine behind it (the scheduler, the background garbage
// collector, part of which the clients' garbage causes), so the servers'
// share is, if anything, overstated.

// benchRoleLabel is the pprof label that marks the benchmark's clients.
const benchRoleLabel = "mpegflow-bench-role"

// asClient runs f as a benchmark client: f and the goroutines it starts
// are counted to the clients in the timed part's CPU profile.
func asClient(ctx context.Context, f func(context.Context)) {
	pprof.Do(ctx, pprof.Labels(benchRoleLabel, "client"), f)
}

// cpuProfile is the CPU profile of a benchmark's timed part, kept in
// memory and, when MPEGFLOW_BENCH_CPUPROFILE names a file, written there
// too (-test.cpuprofile would also cover the set-up, which for
// BenchmarkClaimComplete is the REST submission of every job).
type cpuProfile struct {
	buf     bytes.Buffer
	file    *os.File
	running bool
}

// startCPUProfile starts profiling; when it cannot (another CPU profile,
// such as -test.cpuprofile, is running) the profile stays empty and the
// benchmark reports no split.
func startCPUProfile(b *testing.B) *cpuProfile {
	p := &cpuProfile{}
	var w io.Writer = &p.buf
	if path := os.Getenv("MPEGFLOW_BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		p.file, w = f, io.MultiWriter(&p.buf, f)
	}
	if err := pprof.StartCPUProfile(w); err != nil {
		b.Logf("no CPU split between servers and clients: %v", err)
		p.closeFile(b)
		return p
	}
	p.running = true
	b.Cleanup(func() { p.stop(b) })
	return p
}

// stop ends the profile (once); it returns only when all of it is written.
func (p *cpuProfile) stop(b *testing.B) {
	if !p.running {
		return
	}
	p.running = false
	pprof.StopCPUProfile()
	p.closeFile(b)
}

func (p *cpuProfile) closeFile(b *testing.B) {
	if p.file != nil {
		if err := p.file.Close(); err != nil {
			b.Error(err)
		}
		p.file = nil
	}
}

// clientShare stops the profile and returns the clients' share of the
// CPU time it sampled (0 to 1); ok is false when it holds no CPU samples.
func (p *cpuProfile) clientShare(b *testing.B) (share float64, ok bool) {
	p.stop(b)
	if p.buf.Len() == 0 {
		return 0, false // it never ran
	}
	prof, err := profile.Parse(&p.buf)
	if err != nil {
		b.Fatalf("read the benchmark's CPU profile: %v", err)
	}
	return clientShareOf(prof)
}

// clientShareOf is the share of a CPU profile's time sampled in goroutines
// labelled as benchmark clients.
func clientShareOf(prof *profile.Profile) (share float64, ok bool) {
	cpu := -1
	for i, st := range prof.SampleType {
		if st.Type == "cpu" {
			cpu = i
		}
	}
	if cpu < 0 {
		return 0, false
	}
	var all, clients int64
	for _, s := range prof.Sample {
		v := s.Value[cpu]
		all += v
		for _, role := range s.Label[benchRoleLabel] {
			if role == "client" {
				clients += v
				break
			}
		}
	}
	if all == 0 {
		return 0, false
	}
	return float64(clients) / float64(all), true
}
