package store_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/store"
)

// TestEnsureContentKey: the first key stored for a job stays its key; a
// job of another organization, or no job, gets none; deleting the job
// deletes its key.
func TestEnsureContentKey(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	a, b := bootstrap(t, s, "Acme"), bootstrap(t, s, "Other")
	j := createJob(t, s, urlJob(a.Org.ID))

	first := store.ContentKey{JobID: j.ID, OrgID: a.Org.ID, KID: uuid.New(), SealedKey: []byte("sealed-1")}
	got, err := s.EnsureContentKey(ctx, first)
	require.NoError(t, err)
	assert.Equal(t, first.KID, got.KID)
	assert.Equal(t, first.SealedKey, got.SealedKey)

	again, err := s.EnsureContentKey(ctx, store.ContentKey{JobID: j.ID, OrgID: a.Org.ID, KID: uuid.New(), SealedKey: []byte("sealed-2")})
	require.NoError(t, err)
	assert.Equal(t, first.KID, again.KID, "a second claim gets the first key")
	assert.Equal(t, first.SealedKey, again.SealedKey)

	for name, k := range map[string]store.ContentKey{
		"another organization's job": {JobID: j.ID, OrgID: b.Org.ID, KID: uuid.New(), SealedKey: []byte("x")},
		"no such job":                {JobID: uuid.New(), OrgID: a.Org.ID, KID: uuid.New(), SealedKey: []byte("x")},
	} {
		_, err := s.EnsureContentKey(ctx, k)
		require.ErrorIs(t, err, store.ErrNotFound, name)
	}
	_, err = s.ContentKey(ctx, b.Org.ID, j.ID)
	require.ErrorIs(t, err, store.ErrNotFound)

	_, err = db.Exec(ctx, `DELETE FROM jobs WHERE id = $1`, j.ID)
	require.NoError(t, err)
	_, err = s.ContentKey(ctx, a.Org.ID, j.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "the key goes with its job")
}
