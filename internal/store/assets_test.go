package store_test

import (
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

	_, err := s.DeletableAsset(ctx, b.Org.ID, asset.ID)
	require.ErrorIs(t, err, store.ErrConflict, "the input of a queued job is not deletable")
	require.ErrorIs(t, s.DeleteAsset(ctx, b.Org.ID, asset.ID), store.ErrConflict,
		"the input of a queued job stays, even when the first check was passed earlier")

	_, err = s.DeletableAsset(ctx, other.Org.ID, asset.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.DeleteAsset(ctx, other.Org.ID, asset.ID), store.ErrNotFound)
	require.ErrorIs(t, s.DeleteAsset(ctx, b.Org.ID, uuid.New()), store.ErrNotFound)

	_, err = s.CancelJob(ctx, b.Org.ID, j.ID)
	require.NoError(t, err)

	got0, err := s.DeletableAsset(ctx, b.Org.ID, asset.ID)
	require.NoError(t, err)
	assert.Equal(t, asset.ObjectKey, got0.ObjectKey, "the caller learns the key to remove from storage")
	require.NoError(t, s.DeleteAsset(ctx, b.Org.ID, asset.ID))
	_, err = s.GetAsset(ctx, b.Org.ID, asset.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.DeleteAsset(ctx, b.Org.ID, asset.ID), store.ErrNotFound, "deleting twice finds nothing")

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

			_, err = s.DeletableAsset(ctx, b.Org.ID, asset.ID)
			err2 := s.DeleteAsset(ctx, b.Org.ID, asset.ID)
			if tc.blocked {
				require.ErrorIs(t, err, store.ErrConflict)
				require.ErrorIs(t, err2, store.ErrConflict)
				return
			}
			require.NoError(t, err)
			require.NoError(t, err2)
		})
	}
}
