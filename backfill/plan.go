package backfill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/mpegflow/mpegflow/internal/validation"
)

// AssetKeys finds an organization's asset's object key (the manifest);
// an asset of another organization does not exist.
type AssetKeys interface {
	AssetKey(ctx context.Context, orgID, id uuid.UUID) (string, error)
}

// NewPlan validates src for scope and resolves what it names. Field errors
// are validation.Errors under "source".
func NewPlan(ctx context.Context, src *Source, scope Scope, assets AssetKeys) (Plan, error) {
	bucket, prefix, manifest, err := src.Normalize(scope)
	if err != nil {
		return Plan{}, err
	}
	p := Plan{Kind: src.Kind(), Scope: scope, Format: src.Format}
	if p.Kind == KindPrefix {
		p.Bucket = bucket
		p.Filter = Filter{Prefix: prefix, Include: src.Include, Exclude: src.Exclude}
		return p, nil
	}
	key, err := assets.AssetKey(ctx, scope.Objects.OrgID, manifest)
	if err != nil {
		if _, ok := validation.As(err); ok {
			return Plan{}, err
		}
		return Plan{}, fmt.Errorf("resolve manifest asset %s: %w", manifest, err)
	}
	p.ManifestKey = key
	return p, nil
}

// PlanOf rebuilds the plan of a stored batch source.
func PlanOf(ctx context.Context, raw json.RawMessage, scope Scope, assets AssetKeys) (Plan, error) {
	var src Source
	if err := json.Unmarshal(raw, &src); err != nil {
		return Plan{}, fmt.Errorf("stored batch source: %w", err)
	}
	return NewPlan(ctx, &src, scope, assets)
}

// Summary is what one full read of a source found.
type Summary struct {
	Inputs     int64
	Malformed  int64
	LineErrors []LineError // the first maxReportedErrors
	// ManifestETag is the ETag of the manifest version read ("" for a
	// prefix): the batch expands only that version.
	ManifestETag string
}

// maxReportedErrors bounds the malformed lines a response or a batch lists.
const maxReportedErrors = 100

// Scan reads the whole source once, streaming, and counts its inputs and
// malformed lines; it stops early once more than limit inputs are seen,
// and with ErrSourceTooLarge past MaxEntries lines or keys or
// MaxManifestBytes, inputs or not. Duplicates within the source are
// counted each time (expansion skips them).
func (p Plan) Scan(ctx context.Context, objs Objects, limit int64) (Summary, error) {
	var s Summary
	etag, err := p.walk(ctx, objs, Cursor{}, 5000, scanLimit, func(ch Chunk) error {
		s.Inputs += int64(len(ch.Inputs))
		s.Malformed += int64(len(ch.Errors))
		for _, e := range ch.Errors {
			if len(s.LineErrors) < maxReportedErrors {
				s.LineErrors = append(s.LineErrors, e)
			}
		}
		if s.Inputs > limit {
			return errTooMany
		}
		return nil
	})
	s.ManifestETag = etag
	if errors.Is(err, errTooMany) {
		return s, nil
	}
	return s, err
}

var errTooMany = errors.New("more inputs than the limit")
