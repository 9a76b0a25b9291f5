package store_test

import (
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/store"
)

func TestDeleteAsset(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")
	other := bootstrap(t, s, "Other")
	asset := createAsset(t, s, b.Org.ID)
	assert.Equal(t, assetKey(asset.ID), asset.ObjectKey)

	nj := urlJob(b.Org.ID)
	nj.InputURL, nj.InputAssetID = nil, &asset.ID
	j := createJob(t, s, nj)

	var removed []string
	remove := func(key string) error { removed = append(removed, key); return nil }

	require.ErrorIs(t, s.DeleteAsset(ctx, b.Org.ID, asset.ID, remove), store.ErrConflict,
		"the input of a queued job stays")
	assert.Empty(t, removed, "the object is not touched when the row stays")

	require.ErrorIs(t, s.DeleteAsset(ctx, other.Org.ID, asset.ID, remove), store.ErrNotFound)
	require.ErrorIs(t, s.DeleteAsset(ctx, b.Org.ID, uuid.New(), remove), store.ErrNotFound)
	assert.Empty(t, removed)

	_, err := s.CancelJob(ctx, b.Org.ID, j.ID)
	require.NoError(t, err)

	storageDown := errors.New("s3 unavailable")
	err = s.DeleteAsset(ctx, b.Org.ID, asset.ID, func(string) error { return storageDown })
	require.ErrorIs(t, err, storageDown)
	_, err = s.GetAsset(ctx, b.Org.ID, asset.ID)
	require.NoError(t, err, "when storage refuses, the row stays")

	require.NoError(t, s.DeleteAsset(ctx, b.Org.ID, asset.ID, remove))
	assert.Equal(t, []string{asset.ObjectKey}, removed)
	_, err = s.GetAsset(ctx, b.Org.ID, asset.ID)
	require.ErrorIs(t, err, store.ErrNotFound)

	got, err := s.GetJob(ctx, b.Org.ID, j.ID)
	require.NoError(t, err, "the finished job that used the asset remains")
	assert.Nil(t, got.InputAssetID)
}

func TestDeleteAssetBlockedByEveryUnfinishedStatus(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	b := bootstrap(t, s, "Acme")

	tests := map[string]struct {
		status  string
		blocked bool
	}{
		"queued":     {store.JobQueued, true},
		"running":    {store.JobRunning, true},
		"retry_wait": {store.JobRetryWait, true},
		"completed":  {store.JobCompleted, false},
		"failed":     {store.JobFailed, false},
		"cancelled":  {store.JobCancelled, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			asset := createAsset(t, s, b.Org.ID)
			nj := urlJob(b.Org.ID)
			nj.InputURL, nj.InputAssetID = nil, &asset.ID
			j := createJob(t, s, nj)
			_, err := db.Exec(ctx, `UPDATE jobs SET status = $2 WHERE id = $1`, j.ID, tc.status)
			require.NoError(t, err)

			err = s.DeleteAsset(ctx, b.Org.ID, asset.ID, func(string) error { return nil })
			if tc.blocked {
				require.ErrorIs(t, err, store.ErrConflict)
				return
			}
			require.NoError(t, err)
		})
	}
}
