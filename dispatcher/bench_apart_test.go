package dispatcher

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/mpegflow/mpegflow/internal/gcpolicy"
)

// With MPEGFLOW_BENCH_CLIENTS=process, BenchmarkClaimAtRate's customers
// and pods run in a process of their own, as they do in production: the
// test binary, started again with benchClientsEnv set, which then runs
// them instead of the tests (TestMain). The benchmark tells it what to do
// as one JSON line on its standard input (clientsSpec); it warms up, says
// it is ready (clientsReport), waits for "go", runs the timed part and
// writes what it measured. The servers' collector then has the servers'
// garbage alone (about 50 KB a job instead of 68). On a two-core machine
// it is not the default: the second runtime costs about 100 µs of CPU a
// job more on the same two cores, and the dispatch tail was longer
// (docs/benchmarks.md, "The clients in a process of their own"). The
// clients' process ends its run when the benchmark's input to it closes.

// benchClientsEnv, set in the environment, makes the test binary a
// benchmark's clients.
const benchClientsEnv = "MPEGFLOW_BENCH_CLIENTS_PROCESS"

// clientsSpec is what the clients' process is to do.
type clientsSpec struct {
	REST, APIKey, GRPC, Pool        string
	Rate, Jobs, Workers, Submitters int
	Stall                           time.Duration
	SharedConn                      bool
}

// clientsReport is a line from the clients' process: Ready once warmed
// up, then the run or what went wrong.
type clientsReport struct {
	Ready bool       `json:",omitempty"`
	Run   *atRateRun `json:",omitempty"`
	Err   string     `json:",omitempty"`
}

// clientsApart says whether BenchmarkClaimAtRate's clients run in a
// process of their own: MPEGFLOW_BENCH_CLIENTS=process, or inline (the
// default), in the benchmark's.
func clientsApart(b *testing.B) bool {
	switch v := os.Getenv("MPEGFLOW_BENCH_CLIENTS"); v {
	case "process":
		return true
	case "", "inline":
		return false
	default:
		b.Fatalf("MPEGFLOW_BENCH_CLIENTS=%q: want process or inline", v)
		return false
	}
}

// clientsAtRate warms the clients up and returns the timed part: b.N jobs
// offered at rate a second (benchClients.atRate).
func (r *benchRig) clientsAtRate(b *testing.B, rate int) func() (atRateRun, error) {
	if !clientsApart(b) {
		r.warmUp(b)
		return func() (atRateRun, error) { return r.atRate(b.Context(), rate, b.N, benchWorkers(b)) }
	}
	p := startClients(b, clientsSpec{
		REST: r.restURL, APIKey: r.apiKey, GRPC: r.grpcAddr, Pool: r.pool,
		Rate: rate, Jobs: b.N, Workers: benchWorkers(b), Submitters: benchSubmitters(b), Stall: r.stall, SharedConn: benchSharedConn(b),
	})
	return func() (atRateRun, error) {
		run, err := p.run()
		if err != nil {
			return run, fmt.Errorf("%w; the servers: %s", err, r.stallReport(b.Context()))
		}
		return run, nil
	}
}

// clientsProcess is a running clients' process.
type clientsProcess struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	stderr bytes.Buffer
	// waited and waitErr are wait's, once.
	waited  bool
	waitErr error
}

// startClients starts the clients' process and returns once it has
// warmed up; it is killed, if still running, when the benchmark ends.
func startClients(b *testing.B, spec clientsSpec) *clientsProcess {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	p := &clientsProcess{cmd: exec.Command(self)}
	p.cmd.Env = append(os.Environ(), benchClientsEnv+"=1")
	p.cmd.Stderr = &p.stderr
	if p.in, err = p.cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	p.out = bufio.NewReader(out)
	if err := p.cmd.Start(); err != nil {
		b.Fatalf("start the clients' process: %v", err)
	}
	b.Cleanup(func() { _ = p.wait(true) })
	// One line: the encoder ends what it writes with a newline.
	if err := json.NewEncoder(p.in).Encode(spec); err != nil {
		b.Fatalf("tell the clients' process what to do: %v", err)
	}
	rep, err := p.read()
	if err == nil && !rep.Ready {
		err = fmt.Errorf("not ready: %s", cmp.Or(rep.Err, "it did not say why"))
	}
	if err != nil {
		b.Fatalf("the clients' process: %v", err)
	}
	return p
}

// run tells the process to go and returns what it measured, once it has
// ended.
func (p *clientsProcess) run() (atRateRun, error) {
	if _, err := io.WriteString(p.in, "go\n"); err != nil {
		return atRateRun{}, fmt.Errorf("the clients' process: %w", errors.Join(err, p.wait(true)))
	}
	rep, err := p.read()
	if err != nil {
		return atRateRun{}, fmt.Errorf("the clients' process: %w", err)
	}
	// A process that reports a failure exits 1: its report says why.
	ended := p.wait(false)
	switch {
	case rep.Err != "":
		return atRateRun{}, fmt.Errorf("the clients' process: %s", rep.Err)
	case ended != nil:
		return atRateRun{}, fmt.Errorf("the clients' process: %w", ended)
	case rep.Run == nil:
		return atRateRun{}, errors.New("the clients' process reported neither a run nor a failure")
	}
	return *rep.Run, nil
}

// read reads the process's next report; if there is none, it says how
// the process ended.
func (p *clientsProcess) read() (clientsReport, error) {
	var rep clientsReport
	line, err := p.out.ReadBytes('\n')
	if err != nil {
		return rep, fmt.Errorf("no report (%w): %w", err, cmp.Or(p.wait(true), errors.New("it ended")))
	}
	if err := json.Unmarshal(line, &rep); err != nil {
		return rep, fmt.Errorf("report %.200q: %w", line, err)
	}
	return rep, nil
}

// wait closes the process's input and waits for it to end, killing it
// first when kill; its error carries what the process wrote on its
// standard error.
func (p *clientsProcess) wait(kill bool) error {
	if p.waited {
		return p.waitErr
	}
	p.waited = true
	_ = p.in.Close()
	if kill {
		_ = p.cmd.Process.Kill()
	}
	if err := p.cmd.Wait(); err != nil {
		p.waitErr = fmt.Errorf("%w: %s", err, bytes.TrimSpace(p.stderr.Bytes()))
	}
	return p.waitErr
}

// benchClientsMain is the clients' process (TestMain): its exit code.
func benchClientsMain() int {
	in := bufio.NewReader(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	fail := func(err error) int {
		_ = out.Encode(clientsReport{Err: err.Error()})
		return 1
	}
	line, err := in.ReadBytes('\n')
	if err != nil {
		return fail(fmt.Errorf("read what to do: %w", err))
	}
	var spec clientsSpec
	if err := json.Unmarshal(line, &spec); err != nil {
		return fail(fmt.Errorf("read what to do: %w", err))
	}
	clients, closeAll, err := podClients(spec.GRPC, spec.Workers, spec.SharedConn)
	if err != nil {
		return fail(err)
	}
	defer closeAll()
	c := &benchClients{restURL: spec.REST, apiKey: spec.APIKey, pool: spec.Pool, job: benchJob(spec.Pool), clients: clients, stall: spec.Stall,
		whereStalled: func(context.Context) string { return "the clients' " + goroutinesFile() }}
	// The collector as the rig's servers have it (newBenchRig).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gcpolicy.Apply(ctx, nil, slog.New(slog.DiscardHandler))
	if err := c.warm(ctx, spec.Workers, spec.Submitters); err != nil {
		return fail(fmt.Errorf("warm up: %w", err))
	}
	if err := out.Encode(clientsReport{Ready: true}); err != nil {
		return 1
	}
	if told, err := in.ReadString('\n'); told != "go\n" {
		return fail(errors.Join(fmt.Errorf("told %q instead of go", told), err))
	}
	// The benchmark writes nothing more: the input ends only when the
	// benchmark closes it or dies, and then the run stops.
	go func() {
		_, _ = io.Copy(io.Discard, in)
		cancel()
	}()
	before, err := processCPU()
	if err != nil {
		return fail(err)
	}
	run, err := c.atRate(ctx, spec.Rate, spec.Jobs, spec.Workers)
	if err != nil {
		return fail(err)
	}
	after, err := processCPU()
	if err != nil {
		return fail(err)
	}
	run.CPU = after - before
	if err := out.Encode(clientsReport{Run: &run}); err != nil {
		return 1
	}
	return 0
}
