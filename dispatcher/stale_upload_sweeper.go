package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// SweepStaleUploads is the Stale Upload Sweeper: it marks expired every
// multipart upload of an asset still open UploadTTL after the asset was
// created, then aborts in storage every upload that ended (expired here, or
// aborted by its customer) while storage may still hold its parts, so no
// parts are billed forever; an object a completion joined but never
// recorded (objstore.DiscardUpload) goes too. Rows are marked before
// storage is called (no network I/O inside a transaction); an abort storage
// does not confirm stays recorded and is retried next round. Replicas skip
// each other's rows; two aborting the same upload is harmless.
func (s *Services) SweepStaleUploads(ctx context.Context) (int, error) {
	cutoff := s.c.cfg.Clock.Now().Add(-s.cfg.UploadTTL)
	expired, err := s.c.store.ExpireUploads(ctx, cutoff, s.cfg.Batch)
	if err != nil {
		return 0, fmt.Errorf("stale upload sweeper: %w", err)
	}
	for _, a := range expired {
		s.c.log.InfoContext(ctx, "multipart upload expired unfinished; its parts are discarded",
			slog.String("asset_id", a.ID.String()), slog.String("org_id", a.OrgID.String()), slog.Time("created_at", a.CreatedAt))
	}
	open, err := s.c.store.AbortableUploads(ctx, s.cfg.Batch)
	if err != nil {
		return len(expired), fmt.Errorf("stale upload sweeper: %w", err)
	}
	var errs []error
	aborted := 0
	for _, a := range open {
		if err := s.c.objects.DiscardUpload(ctx, a.ObjectKey, *a.UploadID); err != nil {
			errs = append(errs, fmt.Errorf("asset %s: %w", a.ID, err))
			continue
		}
		if err := s.c.store.ClearUploadID(ctx, a.ID, *a.UploadID); err != nil {
			errs = append(errs, fmt.Errorf("asset %s: %w", a.ID, err))
			continue
		}
		aborted++
	}
	if err := errors.Join(errs...); err != nil {
		return len(expired) + aborted, fmt.Errorf("stale upload sweeper: abort in storage: %w", err)
	}
	return len(expired) + aborted, nil
}
