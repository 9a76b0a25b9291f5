package apiserver

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/store"
)

// TestPartSize: parts are the preferred size until a file would need more
// than 10,000 of them, then the least whole MiB that fits; always within
// S3's 5 MiB to 5 GiB.
func TestPartSize(t *testing.T) {
	t.Parallel()
	const mib, gib, tib = int64(1 << 20), int64(1 << 30), int64(1 << 40)
	u := UploadConfig{}
	require.NoError(t, u.defaults())
	for name, tc := range map[string]struct{ size, want int64 }{
		"just above the threshold": {100*mib + 1, 16 * mib},
		"10,000 preferred parts":   {10_000 * 16 * mib, 16 * mib},
		"one byte more":            {10_000*16*mib + 1, 17 * mib},
		"1 TiB":                    {tib, 105 * mib},
		"100 GiB":                  {100 * gib, 16 * mib},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := u.partSize(tc.size)
			assert.Equal(t, tc.want, got)
			n := partCount(tc.size, got)
			assert.LessOrEqual(t, n, objstore.MaxParts)
			assert.GreaterOrEqual(t, got, int64(objstore.MinPartSize))
			assert.LessOrEqual(t, got, int64(objstore.MaxPartSize))
			last := partBytes(tc.size, got, n)
			assert.Positive(t, last)
			assert.Equal(t, tc.size, int64(n-1)*got+last, "the parts add up to the size")
		})
	}
	for _, bad := range []UploadConfig{{PartSize: 4 * mib}, {PartSize: 6 * gib}, {MultipartThreshold: 6 * gib}} {
		assert.Error(t, bad.defaults(), "%+v", bad)
	}
}

// multipartAsset creates an asset of size bytes through the API; it must
// come with a multipart upload.
func (f *fixture) multipartAsset(t *testing.T, key string, size int64) apiv1.Asset {
	t.Helper()
	var a apiv1.Asset
	f.mustDo(t, http.StatusCreated, "POST", "/v1/assets", key, map[string]any{"filename": "big.mov", "content_type": "video/quicktime", "size_bytes": size}, &a)
	require.NotNil(t, a.Multipart, "an asset above the threshold is uploaded in parts")
	require.Nil(t, a.Upload)
	return a
}

// sendPart PUTs body to a presigned part URL and returns storage's ETag.
func sendPart(t *testing.T, p apiv1.PresignedPart, body []byte) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), p.Method, p.URL, bytes.NewReader(body))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, "part %d: %s", p.PartNumber, b)
	require.NotEmpty(t, resp.Header.Get("ETag"))
	return resp.Header.Get("ETag")
}

// download fetches an asset's content through the download URL its GET
// answers.
func (f *fixture) download(t *testing.T, key, id string) []byte {
	t.Helper()
	var a apiv1.Asset
	f.mustDo(t, http.StatusOK, "GET", "/v1/assets/"+id, key, nil, &a)
	require.NotNil(t, a.Download)
	resp, err := http.Get(a.Download.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return body
}

func randomBytes(n int64) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// TestMultipartUploadEndToEnd sends an asset of three parts through the
// REST API to the real S3 server: the first and last parts, then a resume
// (list what storage holds, presign and send the missing part), refused
// completions (missing part, wrong ETag, wrong list) that change nothing,
// and the completion, after which the asset downloads as sent and can be
// a job's input (it could not while uploading).
func TestMultipartUploadEndToEnd(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := f.keys[auth.Editor]
	const part = 5 << 20
	data := randomBytes(2*part + 1234)
	a := f.multipartAsset(t, key, int64(len(data)))
	base := "/v1/assets/" + a.ID + "/upload"
	assert.Equal(t, store.UploadUploading, a.UploadStatus)
	assert.Equal(t, int64(part), a.Multipart.PartSize)
	require.Equal(t, 3, a.Multipart.PartCount)
	require.Len(t, a.Multipart.Parts, 3, "a small upload gets every URL at once")
	for i, p := range a.Multipart.Parts {
		assert.Equal(t, i+1, p.PartNumber)
		assert.Equal(t, "PUT", p.Method)
	}
	assert.Equal(t, []int64{part, part, 1234}, []int64{a.Multipart.Parts[0].SizeBytes, a.Multipart.Parts[1].SizeBytes, a.Multipart.Parts[2].SizeBytes})
	chunk := func(n int) []byte { return data[(n-1)*part : min(n*part, len(data))] }

	r := f.do(t, "POST", "/v1/jobs", key, map[string]any{"input": map[string]any{"asset_id": a.ID}, "workflow": "mp4-720p"})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r.Body)
	assert.Equal(t, []string{"input.asset_id"}, r.fields(t), "an asset still uploading is no input")

	// The first and last parts, then the upload is interrupted.
	etags := map[int]string{1: sendPart(t, a.Multipart.Parts[0], chunk(1)), 3: sendPart(t, a.Multipart.Parts[2], chunk(3))}

	// Completing without part 2 is refused and names it.
	all := func(etags map[int]string) []map[string]any {
		var out []map[string]any
		for n := 1; n <= 3; n++ {
			out = append(out, map[string]any{"part_number": n, "etag": cmpOrString(etags[n], `"0123"`)})
		}
		return out
	}
	r = f.do(t, "POST", base+"/complete", key, map[string]any{"parts": all(etags)})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r.Body)
	assert.Equal(t, []string{"parts[1].part_number"}, r.fields(t))
	assert.Contains(t, string(r.Body), "part 2 was not uploaded")

	// Resume: ask storage what it holds, a page at a time.
	var page apiv1.UploadedParts
	f.mustDo(t, http.StatusOK, "GET", base+"/parts?limit=1", key, nil, &page)
	require.Len(t, page.Items, 1)
	assert.Equal(t, 1, page.Items[0].PartNumber)
	assert.True(t, objstore.SameETag(etags[1], page.Items[0].ETag))
	require.NotEmpty(t, page.NextCursor)
	var rest apiv1.UploadedParts
	f.mustDo(t, http.StatusOK, "GET", base+"/parts?cursor="+page.NextCursor, key, nil, &rest)
	require.Len(t, rest.Items, 1)
	assert.Equal(t, apiv1.UploadedPart{PartNumber: 3, ETag: rest.Items[0].ETag, SizeBytes: 1234}, rest.Items[0])
	assert.Empty(t, rest.NextCursor)

	var again apiv1.PresignedParts
	f.mustDo(t, http.StatusOK, "POST", base+"/parts", key, map[string]any{"part_numbers": []int{2}}, &again)
	require.Len(t, again.Parts, 1)
	etags[2] = sendPart(t, again.Parts[0], chunk(2))

	refused := []struct {
		name   string
		parts  any
		fields []string
	}{
		{"wrong etag", []map[string]any{all(etags)[0], {"part_number": 2, "etag": etags[1]}, all(etags)[2]}, []string{"parts[1].etag"}},
		{"a part missing from the list", all(etags)[:2], []string{"parts"}},
		{"out of order", []map[string]any{all(etags)[1], all(etags)[0], all(etags)[2]}, []string{"parts[0].part_number", "parts[1].part_number"}},
		{"a part beyond the upload", append(all(etags), map[string]any{"part_number": 4, "etag": etags[1]}), []string{"parts"}},
		{"no etag", []map[string]any{all(etags)[0], {"part_number": 2, "etag": ""}, all(etags)[2]}, []string{"parts[1].etag"}},
	}
	for _, tc := range refused {
		r := f.do(t, "POST", base+"/complete", key, map[string]any{"parts": tc.parts})
		require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s: %s", tc.name, r.Body)
		assert.Subset(t, r.fields(t), tc.fields, tc.name)
	}
	exists, err := f.objects.Exists(t.Context(), "orgs/"+f.orgA.ID.String()+"/assets/"+a.ID+"/source")
	require.NoError(t, err)
	require.False(t, exists, "no refused completion wrote the object")

	var done apiv1.Asset
	f.mustDo(t, http.StatusOK, "POST", base+"/complete", key, map[string]any{"parts": all(etags)}, &done)
	assert.Equal(t, store.UploadUploaded, done.UploadStatus)

	assert.True(t, bytes.Equal(data, f.download(t, f.keys[auth.Viewer], a.ID)), "the asset is the file as sent")

	// The upload is over: no more parts, no second completion.
	assert.Equal(t, http.StatusConflict, f.do(t, "POST", base+"/complete", key, map[string]any{"parts": all(etags)}).Status)
	assert.Equal(t, http.StatusConflict, f.do(t, "POST", base+"/parts", key, map[string]any{"part_numbers": []int{1}}).Status)
	assert.Equal(t, http.StatusConflict, f.do(t, "DELETE", base, key, nil).Status)
	f.submitJob(t, key, map[string]any{"input": map[string]any{"asset_id": a.ID}, "workflow": "mp4-720p"})
}

func cmpOrString(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestMultipartUploadRequests: part numbers outside the upload, repeated
// or too many are refused naming them; an asset uploaded with one PUT has
// no multipart upload to touch (409); a Viewer may not upload.
func TestMultipartUploadRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := f.keys[auth.Editor]
	a := f.multipartAsset(t, key, 7<<20)
	assert.Equal(t, 2, a.Multipart.PartCount)
	base := "/v1/assets/" + a.ID + "/upload"
	many := make([]int, apiv1.MaxPresignParts+1)
	for i := range many {
		many[i] = 1
	}
	for name, tc := range map[string]struct {
		numbers []int
		fields  []string
	}{
		"none":        {[]int{}, []string{"part_numbers"}},
		"zero":        {[]int{0}, []string{"part_numbers[0]"}},
		"beyond":      {[]int{1, 3}, []string{"part_numbers[1]"}},
		"twice":       {[]int{2, 2}, []string{"part_numbers[1]"}},
		"too many":    {many, []string{"part_numbers"}},
		"beyond S3's": {[]int{10_001}, []string{"part_numbers[0]"}},
	} {
		r := f.do(t, "POST", base+"/parts", key, map[string]any{"part_numbers": tc.numbers})
		require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s: %s", name, r.Body)
		assert.Subset(t, r.fields(t), tc.fields, name)
	}
	r := f.do(t, "GET", base+"/parts?cursor=abc", key, nil)
	assert.Equal(t, http.StatusUnprocessableEntity, r.Status)
	assert.Equal(t, http.StatusForbidden, f.do(t, "POST", base+"/parts", f.keys[auth.Viewer], map[string]any{"part_numbers": []int{1}}).Status)

	var small apiv1.Asset
	f.mustDo(t, http.StatusCreated, "POST", "/v1/assets", key, map[string]any{"filename": "small.mp4", "size_bytes": 6 << 20}, &small)
	require.NotNil(t, small.Upload, "at the threshold: one presigned PUT")
	require.Nil(t, small.Multipart)
	assert.Empty(t, small.UploadStatus)
	for _, req := range []struct{ method, path string }{
		{"POST", "/parts"}, {"GET", "/parts"}, {"POST", "/complete"}, {"DELETE", ""},
	} {
		var body any
		switch req.path {
		case "/parts":
			if req.method == "POST" {
				body = map[string]any{"part_numbers": []int{1}}
			}
		case "/complete":
			body = map[string]any{"parts": []map[string]any{{"part_number": 1, "etag": "x"}}}
		}
		r := f.do(t, req.method, "/v1/assets/"+small.ID+"/upload"+req.path, key, body)
		assert.Equal(t, http.StatusConflict, r.Status, "%s %s: %s", req.method, req.path, r.Body)
		assert.Equal(t, problemPrefix+"upload-not-open", r.problem(t).Type)
	}
}

// TestMultipartUploadOtherOrg: org B cannot list, presign, complete or
// abort org A's upload, whatever it knows (404 as for any of A's ids), and
// A's upload goes on unharmed.
func TestMultipartUploadOtherOrg(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := f.keys[auth.Editor]
	data := randomBytes(7 << 20)
	a := f.multipartAsset(t, key, int64(len(data)))
	base := "/v1/assets/" + a.ID + "/upload"
	e1 := sendPart(t, a.Multipart.Parts[0], data[:5<<20])
	e2 := sendPart(t, a.Multipart.Parts[1], data[5<<20:])
	parts := []map[string]any{{"part_number": 1, "etag": e1}, {"part_number": 2, "etag": e2}}
	for _, req := range []struct {
		method, path string
		body         any
	}{
		{"GET", base + "/parts", nil},
		{"POST", base + "/parts", map[string]any{"part_numbers": []int{1}}},
		{"POST", base + "/complete", map[string]any{"parts": parts}},
		{"DELETE", base, nil},
		{"DELETE", "/v1/assets/" + a.ID, nil},
	} {
		r := f.do(t, req.method, req.path, f.keyB, req.body)
		assert.Equal(t, http.StatusNotFound, r.Status, "%s %s: %s", req.method, req.path, r.Body)
		assert.NotContains(t, string(r.Body), e1)
	}
	var done apiv1.Asset
	f.mustDo(t, http.StatusOK, "POST", base+"/complete", key, map[string]any{"parts": parts}, &done)
	assert.Equal(t, store.UploadUploaded, done.UploadStatus)
}

// TestMultipartUploadAbort: aborting discards the parts in storage and
// marks the asset aborted; nothing more can be sent, and the asset can
// still be deleted. Deleting an asset while it uploads aborts its upload.
func TestMultipartUploadAbort(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := f.keys[auth.Editor]
	ctx := t.Context()
	a := f.multipartAsset(t, key, 7<<20)
	sendPart(t, a.Multipart.Parts[0], randomBytes(5<<20))
	row, err := f.store.GetAsset(ctx, f.orgA.ID, uuid.MustParse(a.ID))
	require.NoError(t, err)
	uploadID := *row.UploadID
	var aborted apiv1.Asset
	f.mustDo(t, http.StatusOK, "DELETE", "/v1/assets/"+a.ID+"/upload", key, nil, &aborted)
	assert.Equal(t, store.UploadAborted, aborted.UploadStatus)
	_, err = f.objects.AllParts(ctx, row.ObjectKey, uploadID)
	require.ErrorIs(t, err, objstore.ErrNoUpload, "storage holds the parts no more")
	row, err = f.store.GetAsset(ctx, f.orgA.ID, uuid.MustParse(a.ID))
	require.NoError(t, err)
	assert.Nil(t, row.UploadID, "the abort is recorded as done")
	assert.Equal(t, http.StatusConflict, f.do(t, "GET", "/v1/assets/"+a.ID+"/upload/parts", key, nil).Status)
	r := f.do(t, "POST", "/v1/jobs", key, map[string]any{"input": map[string]any{"asset_id": a.ID}, "workflow": "mp4-720p"})
	assert.Equal(t, http.StatusUnprocessableEntity, r.Status, "an aborted asset is no input")
	f.mustDo(t, http.StatusNoContent, "DELETE", "/v1/assets/"+a.ID, key, nil, nil)

	b := f.multipartAsset(t, key, 7<<20)
	row, err = f.store.GetAsset(ctx, f.orgA.ID, uuid.MustParse(b.ID))
	require.NoError(t, err)
	f.mustDo(t, http.StatusNoContent, "DELETE", "/v1/assets/"+b.ID, key, nil, nil)
	_, err = f.objects.AllParts(ctx, row.ObjectKey, *row.UploadID)
	require.ErrorIs(t, err, objstore.ErrNoUpload, "deleting the asset aborted its upload")
	_, err = f.store.GetAsset(ctx, f.orgA.ID, uuid.MustParse(b.ID))
	require.ErrorIs(t, err, store.ErrNotFound)
}

// TestMultipartUploadRefusesAWrongSize: a part stored with another length
// than its place in the file demands (possible only with credentials that
// bypass the API's length-bound URLs) makes completion fail with 422 naming
// the part; nothing is joined and the upload stays open.
func TestMultipartUploadRefusesAWrongSize(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := f.keys[auth.Editor]
	a := f.multipartAsset(t, key, 7<<20)
	row, err := f.store.GetAsset(t.Context(), f.orgA.ID, uuid.MustParse(a.ID))
	require.NoError(t, err)
	e1 := sendPart(t, a.Multipart.Parts[0], randomBytes(5<<20))
	short, err := f.objects.PresignUploadPart(t.Context(), row.ObjectKey, *row.UploadID, 2, 1<<20)
	require.NoError(t, err)
	e2 := sendPart(t, apiv1.PresignedPart{PartNumber: 2, Method: short.Method, URL: short.URL}, randomBytes(1<<20))
	r := f.do(t, "POST", "/v1/assets/"+a.ID+"/upload/complete", key,
		map[string]any{"parts": []map[string]any{{"part_number": 1, "etag": e1}, {"part_number": 2, "etag": e2}}})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r.Body)
	assert.Equal(t, []string{"parts[1].part_number"}, r.fields(t))
	assert.Contains(t, string(r.Body), "part 2 holds 1048576 bytes, want 2097152")
	exists, err := f.objects.Exists(t.Context(), row.ObjectKey)
	require.NoError(t, err)
	assert.False(t, exists, "nothing joined")
	var page apiv1.UploadedParts
	f.mustDo(t, http.StatusOK, "GET", "/v1/assets/"+a.ID+"/upload/parts", key, nil, &page)
	assert.Len(t, page.Items, 2, "the upload stays open: part 2 can be sent again")
}

// TestMultipartUploadCompletionSurvivesTheDatabase: storage joins the parts
// and then the asset's row cannot be written (here a trigger refuses it, as
// a failed-over database would). The joined object stays, and completing
// again records it: the asset is uploaded and downloads as sent, instead of
// the object being deleted and the upload answered "create a new asset".
func TestMultipartUploadCompletionSurvivesTheDatabase(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := f.keys[auth.Editor]
	const part = 5 << 20
	data := randomBytes(part + 2<<20 + 4321)
	a := f.multipartAsset(t, key, int64(len(data)))
	require.Len(t, a.Multipart.Parts, 2)
	parts := []map[string]any{
		{"part_number": 1, "etag": sendPart(t, a.Multipart.Parts[0], data[:part])},
		{"part_number": 2, "etag": sendPart(t, a.Multipart.Parts[1], data[part:])},
	}
	row, err := f.store.GetAsset(t.Context(), f.orgA.ID, uuid.MustParse(a.ID))
	require.NoError(t, err)

	_, err = f.db.Exec(t.Context(), `
		CREATE FUNCTION refuse_upload_end() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'the database is failing over'; END $$;
		CREATE TRIGGER refuse_upload_end BEFORE UPDATE ON assets FOR EACH ROW
			WHEN (NEW.id = '`+a.ID+`' AND NEW.upload_status = 'uploaded') EXECUTE FUNCTION refuse_upload_end()`)
	require.NoError(t, err)
	r := f.do(t, "POST", "/v1/assets/"+a.ID+"/upload/complete", key, map[string]any{"parts": parts})
	require.Equal(t, http.StatusInternalServerError, r.Status, "%s", r.Body)
	size, err := f.objects.Size(t.Context(), row.ObjectKey)
	require.NoError(t, err, "the joined object is kept")
	assert.Equal(t, int64(len(data)), size)
	var still apiv1.Asset
	f.mustDo(t, http.StatusOK, "GET", "/v1/assets/"+a.ID, key, nil, &still)
	assert.Equal(t, store.UploadUploading, still.UploadStatus)

	_, err = f.db.Exec(t.Context(), `DROP TRIGGER refuse_upload_end ON assets`)
	require.NoError(t, err)
	var done apiv1.Asset
	f.mustDo(t, http.StatusOK, "POST", "/v1/assets/"+a.ID+"/upload/complete", key, map[string]any{"parts": parts}, &done)
	assert.Equal(t, store.UploadUploaded, done.UploadStatus)
	assert.True(t, bytes.Equal(data, f.download(t, key, a.ID)), "the asset is the file as sent")
	assert.Equal(t, http.StatusConflict, f.do(t, "POST", "/v1/assets/"+a.ID+"/upload/complete", key, map[string]any{"parts": parts}).Status,
		"recorded once: the upload is over")
}

// TestMultipartUploadGoneFromStorage: an upload storage aborted behind the
// API's back, with no object joined, answers 409 and records nothing.
func TestMultipartUploadGoneFromStorage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := f.keys[auth.Editor]
	a := f.multipartAsset(t, key, 7<<20)
	e1 := sendPart(t, a.Multipart.Parts[0], randomBytes(5<<20))
	e2 := sendPart(t, a.Multipart.Parts[1], randomBytes(2<<20))
	row, err := f.store.GetAsset(t.Context(), f.orgA.ID, uuid.MustParse(a.ID))
	require.NoError(t, err)
	require.NoError(t, f.objects.AbortMultipart(t.Context(), row.ObjectKey, *row.UploadID))
	r := f.do(t, "POST", "/v1/assets/"+a.ID+"/upload/complete", key,
		map[string]any{"parts": []map[string]any{{"part_number": 1, "etag": e1}, {"part_number": 2, "etag": e2}}})
	require.Equal(t, http.StatusConflict, r.Status, "%s", r.Body)
	assert.Equal(t, problemPrefix+"upload-not-open", r.problem(t).Type)
	var still apiv1.Asset
	f.mustDo(t, http.StatusOK, "GET", "/v1/assets/"+a.ID, key, nil, &still)
	assert.Equal(t, store.UploadUploading, still.UploadStatus, "nothing recorded")
}
