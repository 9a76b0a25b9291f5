package dispatcher

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	"github.com/mpegflow/mpegflow/internal/auth"
)

// benchClients are the benchmarks' customers, who submit jobs over REST,
// and pods, which claim and complete them over gRPC. They run in the
// benchmark's process (benchRig) or, for BenchmarkClaimAtRate, in a
// process of their own (bench_apart_test.go).
type benchClients struct {
	restURL string
	apiKey  string
	// pool is the organization's dedicated pool the jobs go to and the
	// pods serve (newBenchRig creates it); job is the no-op job's
	// request for it (benchJob).
	pool string
	job  []byte
	// clients are the pods' connections to the coordinator: pod i uses
	// clients[i % len(clients)] (podClients).
	clients []coordinatorv1.CoordinatorClient
	// stall ends a run in which no job is done for this long (watch).
	stall time.Duration
	// whereStalled says where the jobs of a stalled run are.
	whereStalled func(context.Context) string
}

// warm submits and works a few hundred jobs (at least four a pod)
// before a benchmark's timed part (benchRig.warmUp says why).
func (c *benchClients) warm(ctx context.Context, workers, submitters int) error {
	n := max(256, 4*workers)
	hc := customers(submitters)
	defer hc.CloseIdleConnections()
	submitted := c.submitAll(ctx, hc, n, submitters)
	_, err := c.work(ctx, workers, int64(n), nil)
	return cmp.Or(<-submitted, err)
}

// submitAll submits n no-op jobs from submitters customers at
// once; the channel gives the first submission's error (nil: all made)
// once every customer is done.
func (c *benchClients) submitAll(ctx context.Context, hc *http.Client, n, submitters int) <-chan error {
	var (
		wg    sync.WaitGroup
		next  atomic.Int64
		mu    sync.Mutex
		first error
	)
	for range submitters {
		wg.Add(1)
		go asClient(ctx, func(ctx context.Context) {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := c.submit(ctx, hc); err != nil {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	done := make(chan error, 1)
	go func() {
		wg.Wait()
		done <- first
	}()
	return done
}

// benchJob is the no-op job's request for pool.
func benchJob(pool string) []byte {
	return fmt.Appendf(nil, `{"input":{"url":"https://media.example.com/noop.mp4"},"workflow":"mp4-720p","pool":%q}`, pool)
}

func (c *benchClients) submit(ctx context.Context, hc *http.Client) error {
	_, err := c.submitID(ctx, hc)
	return err
}

// submitID submits the no-op job and returns its id.
func (c *benchClients) submitID(ctx context.Context, hc *http.Client) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", c.restURL+"/v1/jobs", bytes.NewReader(c.job))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.apiKey)
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var j struct {
		ID string `json:"id"`
	}
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&j) != nil {
		return "", fmt.Errorf("submit: status %d", resp.StatusCode)
	}
	return j.ID, nil
}

// work claims and completes jobs until total have completed, recording
// every successful claim's latency; claimed, if not nil, is told each
// claimed job's id as its claim returns. A pod's Complete claims its next
// job, as the encoder's pods of a pool with jobs_per_pod above one do.
func (c *benchClients) work(ctx context.Context, workers int, total int64, claimed func(id string)) (podLatency, error) {
	// Pods long-poll as the encoder does (MPEGFLOW_CLAIM_WAIT, 20 s); the
	// polls still waiting when the last job is done are cancelled.
	ctx, finished := context.WithCancel(ctx)
	defer finished()
	md := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+auth.WorkerToken(testSecret, c.pool), coordinatorv1.MetadataPool, c.pool)
	var (
		done    atomic.Int64
		mu      sync.Mutex
		lat     podLatency
		firstEr error
		wg      sync.WaitGroup
	)
	watched := make(chan struct{})
	go asClient(ctx, func(ctx context.Context) {
		defer close(watched)
		c.watch(ctx, &done, total, func(err error) {
			mu.Lock()
			firstEr = err
			mu.Unlock()
			finished()
		})
	})
	for i := range workers {
		wg.Add(1)
		go asClient(md, func(md context.Context) {
			defer wg.Done()
			pod := fmt.Sprintf("bench-%d", i)
			client := c.clients[i%len(c.clients)]
			var mine podLatency
			defer func() {
				mu.Lock()
				lat.Claims, lat.Completes = append(lat.Claims, mine.Claims...), append(lat.Completes, mine.Completes...)
				mu.Unlock()
			}()
			fail := func(err error) {
				if ctx.Err() == nil {
					mu.Lock()
					firstEr = cmp.Or(firstEr, err)
					mu.Unlock()
				}
			}
			// The pod claims as the encoder's pods of a pool with
			// jobs_per_pod above one do: each report claims the next
			// job, with Complete when its last claim found one queued
			// (the next is likely queued too: one message), else with
			// a report on the pod's stream of reports (Reports: a
			// CompleteThenClaim each), which waits for one; Claim only
			// when the report answered none.
			var (
				job     *coordinatorv1.Job
				reports coordinatorv1.Coordinator_ReportsClient
			)
			queued := false
			for done.Load() < total {
				if job == nil {
					start := time.Now()
					resp, err := client.Claim(md, &coordinatorv1.ClaimRequest{Pool: c.pool, Lane: "live", Pod: pod, WaitMs: benchClaimWaitMs})
					if err != nil {
						fail(err)
						return
					}
					if job = resp.GetJob(); job == nil {
						continue
					}
					mine.Claims = append(mine.Claims, time.Since(start))
					if claimed != nil {
						claimed(job.GetId())
					}
				}
				req := &coordinatorv1.CompleteRequest{JobId: job.GetId(), Next: &coordinatorv1.ClaimRequest{Pool: c.pool, Lane: "live", Pod: pod}}
				start := time.Now()
				var err error
				if job, queued, err = c.report(md, client, &reports, job.GetClaimToken(), req, queued, func() {
					if done.Add(1) >= total {
						finished()
					}
					mine.Completes = append(mine.Completes, time.Since(start))
					start = time.Now()
				}); err != nil {
					fail(err)
					return
				}
				if job != nil {
					if !queued {
						mine.Claims = append(mine.Claims, time.Since(start))
					}
					if claimed != nil {
						claimed(job.GetId())
					}
				}
			}
		})
	}
	wg.Wait()
	// The watch may be writing a stall report; it ends with work.
	finished()
	<-watched
	mu.Lock()
	defer mu.Unlock()
	return lat, firstEr
}

// report completes a pod's job (its claim token token) and claims its
// next as the encoder's pods do (encoder: Worker.complete): with Complete
// when the pod's last claim found a job queued (queued), else as a report
// on the pod's stream of reports (*reports, opened when nil, and nil
// again once an error ended it), waiting benchClaimWaitMs for one.
// completed is called once the completion has answered. It answers the
// next job (nil: none) and whether it was queued when the completion
// committed.
func (c *benchClients) report(ctx context.Context, client coordinatorv1.CoordinatorClient, reports *coordinatorv1.Coordinator_ReportsClient,
	token string, req *coordinatorv1.CompleteRequest, queued bool, completed func()) (*coordinatorv1.Job, bool, error) {
	if queued {
		resp, err := client.Complete(metadata.AppendToOutgoingContext(ctx, coordinatorv1.MetadataClaimToken, token), req)
		if err != nil {
			return nil, false, err
		}
		completed()
		return resp.GetNext().GetJob(), resp.GetNext().GetJob() != nil, nil
	}
	req.Next.WaitMs = benchClaimWaitMs
	if *reports == nil {
		stream, err := client.Reports(ctx)
		if err != nil {
			return nil, false, err
		}
		*reports = stream
	}
	stream := *reports
	resp, err := reportOnce(stream, token, req)
	if err != nil {
		*reports = nil
		return nil, false, err
	}
	completed()
	job := resp.GetNext().GetJob()
	queued = job != nil
	if job == nil && resp.GetNextError() == "" {
		// A second message answers the claim.
		if resp, err = stream.Recv(); err != nil {
			*reports = nil
			return nil, false, err
		}
		job = resp.GetNext().GetJob()
	}
	return job, queued, nil
}

// reportOnce sends a report on stream and answers its first message.
func reportOnce(stream coordinatorv1.Coordinator_ReportsClient, token string, req *coordinatorv1.CompleteRequest) (*coordinatorv1.CompleteResponse, error) {
	if err := stream.Send(&coordinatorv1.ReportRequest{ClaimToken: token, Complete: req}); err != nil {
		if _, end := stream.Recv(); end != nil {
			err = end // the stream had ended: its end says why
		}
		return nil, err
	}
	return stream.Recv()
}

// watch ends work when no job is done for c.stall while some are left:
// stop gets an error that tells what whereStalled finds (for the rig: the
// jobs by status, the jobs left running, the lane's length in Redis, and
// the file that holds every goroutine's stack), instead of a benchmark
// that waits for ever on jobs that cannot come.
func (c *benchClients) watch(ctx context.Context, done *atomic.Int64, total int64, stop func(error)) {
	tick := time.NewTicker(min(5*time.Second, max(c.stall/4, time.Millisecond)))
	defer tick.Stop()
	last, since := done.Load(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if n := done.Load(); n != last || n >= total {
			last, since = n, time.Now()
			continue
		}
		if time.Since(since) < c.stall {
			continue
		}
		stop(fmt.Errorf("no job done for %s, %d of %d: %s", time.Since(since).Round(time.Second), last, total, c.whereStalled(ctx)))
		return
	}
}

// customers is the customers' HTTP client: a connection kept for each of
// conns submitting at once (with fewer, the extra ones are closed after
// each request and opened again). Its user closes them (goleak).
func customers(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns}}
}

// maxOffered is how many submissions atRate has in flight at most.
const maxOffered = 512

// atRateRun is what a run at a fixed rate measured (benchClaimAtRate).
type atRateRun struct {
	// Dispatch is each job's time from its scheduled submission to the
	// return of the Claim that handed it to a pod. It is the sum of three
	// parts: Offer, from the schedule to the submission's sending (the
	// clients' own delay); Submit, the REST submission; Queued, from the
	// submission's answer to that Claim's return (0 when the claim came
	// first: the id is queued before the answer is written). All sorted.
	Dispatch, Offer, Submit, Queued []time.Duration
	Pods                            podLatency
	// Late is how far behind schedule the last submission was sent.
	Late    time.Duration
	Elapsed time.Duration
	// CPU is the clients' CPU time in the run when they have a process of
	// their own; 0 when they share the benchmark's.
	CPU time.Duration
}

// atRate offers n jobs at rate a second over REST (open loop: each
// submission is sent at its scheduled time whatever the earlier ones are
// doing, up to maxOffered in flight) while workers pods claim and
// complete them. The first failure, a submission's or a pod's, ends it.
func (c *benchClients) atRate(ctx context.Context, rate, n, workers int) (atRateRun, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hc := customers(maxOffered)
	defer hc.CloseIdleConnections()
	interval := time.Second / time.Duration(rate)
	// The bookkeeping holds no pointers (ids as uuid.UUID, times as
	// offsets from the start), so the garbage collector does not scan
	// it: with string keys and time.Time values it was a third of the
	// live heap, and when the clients share the servers' process it
	// lengthened every mark phase of the system under test.
	var (
		mu        sync.Mutex
		scheduled = make(map[uuid.UUID]time.Duration, n)
		answered  = make(map[uuid.UUID]time.Duration, n)
		claimedAt = make(map[uuid.UUID]time.Duration, n)
		submitLat = make([]time.Duration, 0, n)
		offered   = make([]time.Duration, 0, n)
		subErr    error // the first, under mu
		wg        sync.WaitGroup
		late      time.Duration
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		subErr = cmp.Or(subErr, err)
		cancel()
	}
	// keep parses the id that what (a submission or a claim) answered and
	// hands it to put under mu.
	keep := func(what, id string, put func(uuid.UUID)) {
		key, err := uuid.Parse(id)
		if err != nil {
			fail(fmt.Errorf("%s answered id %q: %w", what, id, err))
			return
		}
		mu.Lock()
		defer mu.Unlock()
		put(key)
	}
	inflight := make(chan struct{}, maxOffered)
	start := time.Now()
	wg.Add(1)
	go asClient(ctx, func(ctx context.Context) {
		defer wg.Done()
		for i := range n {
			due := start.Add(time.Duration(i) * interval)
			select {
			case <-time.After(time.Until(due)):
			case <-ctx.Done():
				return
			}
			select {
			case inflight <- struct{}{}:
			case <-ctx.Done():
				return
			}
			late = max(time.Since(due), 0)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-inflight }()
				sent := time.Now()
				id, err := c.submitID(ctx, hc)
				took := time.Since(sent)
				if err != nil {
					fail(err)
					return
				}
				keep("submission", id, func(key uuid.UUID) {
					scheduled[key] = due.Sub(start)
					answered[key] = sent.Add(took).Sub(start)
					submitLat = append(submitLat, took)
					offered = append(offered, sent.Sub(due))
				})
			}()
		}
	})
	pods, err := c.work(ctx, workers, int64(n), func(id string) {
		at := time.Since(start)
		keep("claim", id, func(key uuid.UUID) { claimedAt[key] = at })
	})
	if err != nil {
		cancel() // the submissions stop too
	}
	wg.Wait()
	run := atRateRun{Pods: pods, Late: late, Elapsed: time.Since(start), Submit: submitLat, Offer: offered}
	if err := cmp.Or(err, subErr); err != nil {
		return run, err
	}
	if path := os.Getenv("MPEGFLOW_BENCH_TRACE"); path != "" {
		if err := writeTrace(path, scheduled, answered, claimedAt); err != nil {
			return run, err
		}
	}
	run.Dispatch = make([]time.Duration, 0, len(claimedAt))
	run.Queued = make([]time.Duration, 0, len(claimedAt))
	for id, at := range claimedAt {
		if due, ok := scheduled[id]; ok {
			run.Dispatch = append(run.Dispatch, at-due)
			run.Queued = append(run.Queued, max(at-answered[id], 0))
		}
	}
	if len(run.Dispatch) != n {
		return run, fmt.Errorf("%d of %d jobs matched a submission", len(run.Dispatch), n)
	}
	slices.Sort(run.Dispatch)
	slices.Sort(run.Submit)
	slices.Sort(run.Offer)
	slices.Sort(run.Queued)
	return run, nil
}

// writeTrace writes one line a job to path (MPEGFLOW_BENCH_TRACE), in the
// order of their schedule: when its submission was due, when the
// submission answered and when the claim that handed it to a pod returned
// (milliseconds from the run's start), and its dispatch time (claimed less
// due). It shows whether a run's tail is a few stalls or the whole run.
func writeTrace(path string, scheduled, answered, claimedAt map[uuid.UUID]time.Duration) error {
	ids := slices.SortedFunc(maps.Keys(scheduled), func(a, b uuid.UUID) int { return cmp.Compare(scheduled[a], scheduled[b]) })
	var b strings.Builder
	b.WriteString("due_ms,answered_ms,claimed_ms,dispatch_ms\n")
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 3, 64) }
	for _, id := range ids {
		claimed, ok := claimedAt[id]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "%s,%s,%s,%s\n", ms(scheduled[id]), ms(answered[id]), ms(claimed), ms(claimed-scheduled[id]))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("MPEGFLOW_BENCH_TRACE: %w", err)
	}
	return nil
}

// podClients dials the coordinator at addr for n pods: a connection for
// each, as every encode pod has its own, or one between them when shared
// (MPEGFLOW_BENCH_CONNS, benchSharedConn). One connection is the default
// and the model of every figure before session 34 of issue 19: its frames
// are read and written many at a time, which spares the clients' CPU (on
// these two cores, the coordinator's too) but flatters the coordinator's
// own by about a quarter a job (docs/benchmarks.md); a connection a pod is
// what the coordinator meets in production. closeAll closes them.
func podClients(addr string, n int, shared bool) (clients []coordinatorv1.CoordinatorClient, closeAll func(), err error) {
	if shared {
		n = 1
	}
	var conns []*grpc.ClientConn
	closeAll = func() {
		for _, c := range conns {
			c.Close()
		}
	}
	for range n {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("dial the coordinator: %w", err)
		}
		conns = append(conns, conn)
		clients = append(clients, coordinatorv1.NewCoordinatorClient(conn))
	}
	return clients, closeAll, nil
}
