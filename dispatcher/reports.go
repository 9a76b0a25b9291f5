package dispatcher

import (
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
)

// errReportsStopping ends a pod's Reports stream when the coordinator
// stops between two of its reports: nothing was read from it that is not
// answered, so the pod reports again, on a new stream.
var errReportsStopping = status.Error(codes.Unavailable, "Reports: the coordinator is stopping; report again on a new stream")

// Reports serves a pod's reports on one stream: each is a
// CompleteThenClaim, answered as one (completeThenClaim), whose claim
// token comes in the message. A goroutine of the stream reads and answers
// them; the call's own waits for that to end, or for the coordinator to
// stop (Serve): a stream between two reports (its pod encoding, say) then
// ends at once, and one in the middle of a report when that report is
// answered (a claim's wait ends at the stop), so that a rolling update
// does not wait on the pods' streams. Each report is counted and timed
// as a call of Reports (the stream itself is not: StreamInterceptor).
func (c *Coordinator) Reports(stream grpc.BidiStreamingServer[coordinatorv1.ReportRequest, coordinatorv1.CompleteResponse]) error {
	gate := &reportGate{}
	done := make(chan error, 1)
	go func() {
		var err error
		defer func() { done <- err }()
		// The interceptors' recovery covers the call's goroutine only.
		defer recovered(stream.Context(), c.log, coordinatorv1.Coordinator_Reports_FullMethodName, &err)
		err = c.serveReports(stream, gate)
	}()
	select {
	case err := <-done:
		return err
	case <-c.stopping:
	}
	if gate.close() {
		// Between reports: the goroutine's read ends with the stream,
		// and a report it reads meanwhile is dropped unanswered.
		return errReportsStopping
	}
	return <-done
}

// serveReports reads the stream's reports and answers each in turn until
// the pod closes the stream (nil), a report fails (its error ends the
// stream), or gate closes.
func (c *Coordinator) serveReports(stream grpc.BidiStreamingServer[coordinatorv1.ReportRequest, coordinatorv1.CompleteResponse], gate *reportGate) error {
	ctx := stream.Context()
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if !gate.begin() {
			return errReportsStopping
		}
		observe := c.timeCall(coordinatorv1.Coordinator_Reports_FullMethodName)
		err = c.completeThenClaim(withClaimToken(ctx, req.GetClaimToken()), "Reports", req.GetComplete(), stream.Send)
		observe()
		if err != nil {
			return err
		}
		if !gate.end() {
			return errReportsStopping
		}
	}
}

// reportGate says whether a Reports stream is in the middle of a report,
// and closes it to further reports once the coordinator stops.
type reportGate struct {
	mu     sync.Mutex
	busy   bool
	closed bool
}

// begin starts a report, unless the gate is closed.
func (g *reportGate) begin() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.busy = !g.closed
	return g.busy
}

// end ends a report; it says whether another may follow.
func (g *reportGate) end() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.busy = false
	return !g.closed
}

// close closes the gate; it says whether no report was in progress.
func (g *reportGate) close() (idle bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	return !g.busy
}
