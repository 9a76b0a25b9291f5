package dispatcher

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"unicode/utf8"

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
	if !mayHaveKey(j.Spec, "encryption") {
		return nil, nil
	}
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

// mayHaveKey reports whether the JSON document doc can hold an object key
// that encoding/json would decode into a field named key (lower-case
// ASCII letters): in a document of ASCII without escapes, only by having
// key in it in some case (json matches names so); any other document
// may. When it cannot, decoding doc for that field would find nothing,
// and each claim is spared the decoding of its spec.
func mayHaveKey(doc []byte, key string) bool {
	for _, c := range doc {
		if c == '\\' || c >= utf8.RuneSelf {
			return true
		}
	}
	for i := 0; i+len(key) <= len(doc); i++ {
		if doc[i]|0x20 == key[0] && bytes.EqualFold(doc[i:i+len(key)], []byte(key)) {
			return true
		}
	}
	return false
}
