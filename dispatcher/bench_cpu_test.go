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
// part splits it: each part's goroutines run under a pprof label naming
// its role (asRole), which every goroutine they start inherits: the HTTP
// transport's and the gRPC connection's for the clients, the fasthttp
// workers and group-commit batches of submissions for the API, the gRPC
// stream workers and their batches for the coordinator. What carries no
// label is the runtime's own work that has no goroutine behind it (the
// scheduler, the background garbage collector, part of which the clients'
// garbage causes) and the pools' background goroutines; it counts as the
// servers' but as neither the API's nor the coordinator's, so the servers'
// share is, if anything, overstated.

// benchRoleLabel is the pprof label that names a goroutine's part in the
// benchmark: roleClient, roleAPI or roleCoordinator.
const benchRoleLabel = "mpegflow-bench-role"

const (
	roleClient      = "client"
	roleAPI         = "api"
	roleCoordinator = "coordinator"
)

// asRole runs f as the benchmark's part role: f and the goroutines it
// starts are counted to role in the timed part's CPU profile.
func asRole(ctx context.Context, role string, f func(context.Context)) {
	pprof.Do(ctx, pprof.Labels(benchRoleLabel, role), f)
}

// asClient runs f as a benchmark client (a customer or a pod).
func asClient(ctx context.Context, f func(context.Context)) {
	asRole(ctx, roleClient, f)
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

// roleShares stops the profile and returns each role's share of the CPU
// time it sampled (0 to 1; "" for what carries no role); ok is false when
// it holds no CPU samples.
func (p *cpuProfile) roleShares(b *testing.B) (shares map[string]float64, ok bool) {
	p.stop(b)
	if p.buf.Len() == 0 {
		return nil, false // it never ran
	}
	prof, err := profile.Parse(&p.buf)
	if err != nil {
		b.Fatalf("read the benchmark's CPU profile: %v", err)
	}
	return roleSharesOf(prof)
}

// roleSharesOf is each role's share of a CPU profile's time, by the
// benchRoleLabel of the goroutines sampled ("" for none).
func roleSharesOf(prof *profile.Profile) (shares map[string]float64, ok bool) {
	cpu := -1
	for i, st := range prof.SampleType {
		if st.Type == "cpu" {
			cpu = i
		}
	}
	if cpu < 0 {
		return nil, false
	}
	var all int64
	byRole := map[string]int64{}
	for _, s := range prof.Sample {
		v := s.Value[cpu]
		all += v
		role := ""
		if roles := s.Label[benchRoleLabel]; len(roles) > 0 {
			role = roles[0]
		}
		byRole[role] += v
	}
	if all == 0 {
		return nil, false
	}
	shares = make(map[string]float64, len(byRole))
	for role, v := range byRole {
		shares[role] = float64(v) / float64(all)
	}
	return shares, true
}
