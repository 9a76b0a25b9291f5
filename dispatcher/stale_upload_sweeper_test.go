package dispatcher

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/store"
)

// openUpload opens a multipart upload in the test bucket, records its
// asset and sends part 1 (a few bytes) through a presigned URL.
func (e *env) openUpload(t *testing.T) store.Asset {
	t.Helper()
	ctx := t.Context()
	id := store.NewAssetID()
	key := "orgs/" + e.org.ID.String() + "/assets/" + id.String() + "/source"
	uploadID, err := e.objects.CreateMultipart(ctx, key, "video/mp4")
	require.NoError(t, err)
	a, err := e.store.CreateUploadingAsset(ctx, store.UploadingAsset{ID: id, OrgID: e.org.ID, Filename: "big.mp4", ContentType: "video/mp4",
		SizeBytes: 7 << 20, PartSize: 5 << 20, ObjectKey: key, UploadID: uploadID})
	require.NoError(t, err)
	u, err := e.objects.PresignUploadPart(ctx, key, uploadID, 1, 6)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(ctx, u.Method, u.URL, bytes.NewReader([]byte("frames")))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return a
}

// TestStaleUploadSweeper runs the sweeper against the real S3 server: an
// upload open longer than UploadTTL is marked expired and aborted in
// storage (its parts are gone), a younger one is left alone, and an upload
// its customer aborted while storage did not confirm is aborted in storage
// too. A second round has nothing to do.
func TestStaleUploadSweeper(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	fc := newFakeClock()
	in := e.start(Config{Clock: fc}).withServices(ServicesConfig{UploadTTL: 24 * time.Hour})
	ctx := t.Context()

	stale, fresh, dangling := e.openUpload(t), e.openUpload(t), e.openUpload(t)
	_, err := e.db.Exec(ctx, `UPDATE assets SET created_at = $2 WHERE id = $1`, stale.ID, fc.Now().Add(-25*time.Hour))
	require.NoError(t, err)
	// The customer aborted; storage never heard of it (the API's call failed).
	_, err = e.store.EndUpload(ctx, e.org.ID, dangling.ID, *dangling.UploadID, store.UploadAborted)
	require.NoError(t, err)

	parts := func(a store.Asset) error {
		_, err := e.objects.AllParts(ctx, a.ObjectKey, *a.UploadID)
		return err
	}
	get := func(id uuid.UUID) store.Asset {
		a, err := e.store.GetAsset(ctx, e.org.ID, id)
		require.NoError(t, err)
		return a
	}

	n, err := in.services.SweepStaleUploads(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, n, "one expired, two aborted in storage")

	got := get(stale.ID)
	assert.Equal(t, store.UploadExpired, *got.UploadStatus)
	assert.Nil(t, got.UploadID, "the abort is recorded as done")
	require.ErrorIs(t, parts(stale), objstore.ErrNoUpload, "storage holds the stale upload's parts no more")

	got = get(dangling.ID)
	assert.Equal(t, store.UploadAborted, *got.UploadStatus)
	assert.Nil(t, got.UploadID)
	require.ErrorIs(t, parts(dangling), objstore.ErrNoUpload)

	got = get(fresh.ID)
	assert.Equal(t, store.UploadUploading, *got.UploadStatus, "a young upload is left alone")
	require.NoError(t, parts(fresh))

	n, err = in.services.SweepStaleUploads(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "nothing left to do")

	// A day later the fresh one is stale too.
	fc.Step(24*time.Hour + time.Minute)
	n, err = in.services.SweepStaleUploads(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.Equal(t, store.UploadExpired, *get(fresh.ID).UploadStatus)
	require.ErrorIs(t, parts(fresh), objstore.ErrNoUpload)
}

// TestStaleUploadSweeperDiscardsAnUnrecordedJoin: a completion joined an
// upload's parts in storage but its asset was never recorded uploaded (the
// database failed and the client did not come back). Once the upload
// expires, the sweeper finds storage holding no upload and deletes the
// joined object, which nothing could reach any more.
func TestStaleUploadSweeperDiscardsAnUnrecordedJoin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	fc := newFakeClock()
	in := e.start(Config{Clock: fc}).withServices(ServicesConfig{UploadTTL: 24 * time.Hour})
	ctx := t.Context()
	joined := e.openUpload(t)
	parts, err := e.objects.AllParts(ctx, joined.ObjectKey, *joined.UploadID)
	require.NoError(t, err)
	require.NoError(t, e.objects.CompleteMultipart(ctx, joined.ObjectKey, *joined.UploadID, parts))
	exists, err := e.objects.Exists(ctx, joined.ObjectKey)
	require.NoError(t, err)
	require.True(t, exists)
	_, err = e.db.Exec(ctx, `UPDATE assets SET created_at = $2 WHERE id = $1`, joined.ID, fc.Now().Add(-25*time.Hour))
	require.NoError(t, err)

	_, err = in.services.SweepStaleUploads(ctx)
	require.NoError(t, err)
	a, err := e.store.GetAsset(ctx, e.org.ID, joined.ID)
	require.NoError(t, err)
	assert.Equal(t, store.UploadExpired, *a.UploadStatus)
	assert.Nil(t, a.UploadID)
	exists, err = e.objects.Exists(ctx, joined.ObjectKey)
	require.NoError(t, err)
	assert.False(t, exists, "the joined object no asset owns is deleted")
}
