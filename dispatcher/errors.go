package dispatcher

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/validation"
)

// toStatus maps domain errors to gRPC status codes with a message a worker's
// operator can act on; unknown errors are logged and answered Internal.
func (c *Coordinator) toStatus(ctx context.Context, op string, err error) error {
	var nr *store.NotRunningError
	var ve validation.Errors
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		return err // already a status (from a check inside a transaction)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return status.Error(codes.NotFound, op+": no such job in this pool")
	case errors.Is(err, store.ErrClaimToken):
		return status.Error(codes.PermissionDenied, op+": this worker does not hold the job (claim token mismatch)")
	case errors.As(err, &nr):
		return status.Error(codes.FailedPrecondition, op+": "+nr.Error())
	case errors.As(err, &ve):
		return status.Error(codes.InvalidArgument, op+": "+ve.Error())
	case errors.Is(err, store.ErrConflict):
		return status.Error(codes.FailedPrecondition, op+": "+err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	c.log.ErrorContext(ctx, "coordinator call failed", slog.String("method", op), slog.Any("error", err))
	return status.Error(codes.Internal, op+": internal error (logged)")
}
