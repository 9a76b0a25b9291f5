package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	"github.com/mpegflow/mpegflow/internal/contentkey"
	"github.com/mpegflow/mpegflow/internal/encodespec"
	"github.com/mpegflow/mpegflow/internal/store"
)

// contentKey returns the content key of a just-claimed job whose spec asks
// for encryption, nil for any other job. The first claim of the job makes
// the key and stores it sealed; every later claim (a retry, a re-claim
// after a lost lease) gets the same key, so outputs of two attempts never
// need two keys. The key URIs point at the REST API (PublicURL), which
// serves the key to the job's organization only.
func (c *Coordinator) contentKey(ctx context.Context, j store.ClaimedJob) (*coordinatorv1.ContentKey, error) {
	var spec struct {
		Encryption *encodespec.Encryption `json:"encryption"`
	}
	if err := json.Unmarshal(j.Spec, &spec); err != nil {
		return nil, fmt.Errorf("read the job's spec: %w", err)
	}
	if spec.Encryption == nil {
		return nil, nil
	}
	k, err := contentkey.New()
	if err != nil {
		return nil, err
	}
	sealed, err := c.sealer.Seal(j.ID, k.Value)
	if err != nil {
		return nil, err
	}
	stored, err := c.store.EnsureContentKey(ctx, store.ContentKey{JobID: j.ID, OrgID: j.OrgID, KID: k.ID, SealedKey: sealed})
	if err != nil {
		return nil, fmt.Errorf("store the content key: %w", err)
	}
	value, err := c.sealer.Open(j.ID, stored.SealedKey)
	if err != nil {
		return nil, fmt.Errorf("open the job's stored content key (was MPEGFLOW_SERVER_SECRET changed?): %w", err)
	}
	base := c.cfg.PublicURL + "/v1/jobs/" + j.ID.String()
	return &coordinatorv1.ContentKey{Key: value, Kid: stored.KID[:], KeyUri: base + "/key", LicenseUri: base + "/clearkey"}, nil
}
