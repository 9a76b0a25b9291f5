package dispatcher

import (
	"context"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
)

// streamWorkers is how many long-lived goroutines run the server's calls:
// their grown stacks are kept, not grown again per call. A pod waiting
// for its next job holds one for the wait, so past as many pods as
// workers each call runs on a goroutine of its own, whose stack grows
// through the claim every time (at 1,000 jobs a second with 128 pods and
// 64 workers, about 7 µs a job). Idle ones cost a small stack each; the
// race detector's limit on live goroutines (8,128) bounds how many the
// tests' servers may start together.
const streamWorkers = 256

// NewGRPCServer returns a gRPC server serving c with panic recovery,
// authentication and metrics on every call.
func (c *Coordinator) NewGRPCServer() *grpc.Server {
	s := grpc.NewServer(
		grpc.ChainUnaryInterceptor(recoverUnary(c.log), c.UnaryInterceptor), // recovery first: it covers the rest
		grpc.ChainStreamInterceptor(recoverStream(c.log), c.StreamInterceptor),
		grpc.MaxRecvMsgSize(8<<20),
		grpc.NumStreamWorkers(streamWorkers),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
	coordinatorv1.RegisterCoordinatorServer(s, c)
	return s
}

// Serve answers on ln until ctx ends, then stops gracefully: long-polling
// claims end at once with Unavailable (their pods claim again, from another
// replica during a rolling update), and the calls in flight finish. A call
// still running MaxWait + 5 s later is cut off.
func (c *Coordinator) Serve(ctx context.Context, ln net.Listener) error {
	s := c.NewGRPCServer()
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve grpc: %w", err)
	case <-ctx.Done():
		c.stopOnce.Do(func() { close(c.stopping) })
		done := make(chan struct{})
		go func() { s.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(c.cfg.MaxWait + 5*time.Second):
			s.Stop()
		}
		return nil
	}
}
