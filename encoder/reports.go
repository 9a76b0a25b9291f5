package encoder

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
)

// reportStream is the pod's stream of reports (Coordinator.Reports),
// opened by the first report that waits for the pod's next job and kept
// for the next ones: each then saves a call's set-up on both sides
// (headers, authentication, dispatch).
type reportStream struct {
	stream grpc.BidiStreamingClient[coordinatorv1.ReportRequest, coordinatorv1.CompleteResponse]
	ctx    context.Context
	cancel context.CancelFunc
}

// reports returns the pod's report stream, opening one when it has none
// (or its last was cancelled); fresh says it was just opened. The stream
// outlives ctx (a job's): it ends with dropReports.
func (w *Worker) reports(ctx context.Context) (r *reportStream, fresh bool, err error) {
	if w.reportStream != nil && w.reportStream.ctx.Err() == nil {
		return w.reportStream, false, nil
	}
	w.dropReports()
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stream, err := w.client.Reports(w.auth(sctx, ""))
	if err != nil {
		cancel()
		return nil, false, err
	}
	w.reportStream = &reportStream{stream: stream, ctx: sctx, cancel: cancel}
	return w.reportStream, true, nil
}

// dropReports ends the pod's report stream, if it has one: after an
// error, which ends it, or once the pod reports no more.
func (w *Worker) dropReports() {
	if w.reportStream == nil {
		return
	}
	_ = w.reportStream.stream.CloseSend() // best effort: the cancel ends it anyway
	w.reportStream.cancel()
	w.reportStream = nil
}

// report sends req, the report of the job whose claim token is token, on
// the stream and answers its first message. What ends ctx (the job's: it was
// cancelled, or SIGTERM came while it ran) meanwhile ends the report, as
// it ends a call, and the stream with it.
func (r *reportStream) report(ctx context.Context, token string, req *coordinatorv1.CompleteRequest) (*coordinatorv1.CompleteResponse, error) {
	defer context.AfterFunc(ctx, r.cancel)()
	if err := r.stream.Send(&coordinatorv1.ReportRequest{ClaimToken: token, Complete: req}); err != nil {
		// The stream had ended (io.EOF): its end says why.
		if _, end := r.stream.Recv(); end != nil {
			err = end
		}
		return nil, err
	}
	return r.stream.Recv()
}

// reportAgain says whether a report that failed with err before any
// answer, on a stream kept from an earlier report, goes again on a new
// stream: the stream had ended meanwhile (its coordinator stopping, which
// reads no report it does not answer, or its connection gone). A
// completion that did commit before a connection was lost is refused the
// second time (the job is no longer held), as it would be retried after
// any lost answer.
func reportAgain(err error) bool {
	return status.Code(err) == codes.Unavailable
}
