package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errPanicked is what a worker sees of a call whose handler panicked: no
// panic value, no stack (the coordinator's log has both).
var errPanicked = status.Error(codes.Internal, "the coordinator failed to handle the call; it has been logged")

// recoverUnary is the outermost interceptor of the coordinator's server: a
// handler's panic becomes codes.Internal with a generic message and an error
// log line with the method, the panic value and the stack. Without it one
// panicking call would end the coordinator and every worker's long poll.
// recoverStream is its counterpart for the streamed call.
func recoverUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer recovered(ctx, log, info.FullMethod, &err)
		return handler(ctx, req)
	}
}

// recoverStream is recoverUnary for streamed calls (CompleteThenClaim, Reports).
func recoverStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer recovered(ss.Context(), log, info.FullMethod, &err)
		return handler(srv, ss)
	}
}

// recovered, deferred by an interceptor around a handler of method, makes
// a panic the call's errPanicked (*err) and logs its value and stack. (A
// unary call's answer is then nil already: the handler never returned.)
func recovered(ctx context.Context, log *slog.Logger, method string, err *error) {
	v := recover()
	if v == nil {
		return
	}
	log.ErrorContext(ctx, "grpc handler panicked; the call failed with Internal, fix the handler",
		slog.String("method", method), slog.String("panic", fmt.Sprint(v)),
		slog.String("stack", string(debug.Stack())))
	*err = errPanicked
}
