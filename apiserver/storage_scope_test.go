package apiserver

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
)

// orgAsset creates an asset of org A (uploading nothing) and returns its
// stored object key and the presigned download URL the API hands org A.
func (f *fixture) orgAsset(t *testing.T) (key, download string) {
	t.Helper()
	var a apiv1.Asset
	f.mustDo(t, http.StatusCreated, "POST", "/v1/assets", f.keys[auth.Editor], map[string]any{"filename": "secret.mov", "size_bytes": 1}, &a)
	var got apiv1.Asset
	f.mustDo(t, http.StatusOK, "GET", "/v1/assets/"+a.ID, f.keys[auth.Viewer], nil, &got)
	stored, err := f.store.GetAsset(t.Context(), f.orgA.ID, uuid.MustParse(a.ID))
	require.NoError(t, err)
	return stored.ObjectKey, got.Download.URL
}

// refusedInput submits a job as key and requires a 422 that names
// input.url and says what is allowed.
func (f *fixture) refusedInput(t *testing.T, key, input string) {
	t.Helper()
	r := f.do(t, "POST", "/v1/jobs", key, map[string]any{"input": map[string]any{"url": input}, "workflow": "mp4-720p"})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s: %s", input, r.Body)
	p := r.problem(t)
	require.Len(t, p.Errors, 1, "%s", r.Body)
	assert.Equal(t, "input.url", p.Errors[0].Field)
	assert.Contains(t, p.Errors[0].Detail, "allowed: s3://"+f.objects.Bucket()+"/orgs/", "the detail names what is allowed")
}

// TestJobInputOutsideScope: org B cannot make the server read org A's
// objects — by s3:// key, by a URL of the storage endpoint (org A's own
// presigned download URL, or a path-style URL), through path tricks, or in
// another bucket. Org A may read its own, stored in canonical s3:// form.
func TestJobInputOutsideScope(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	bucket := f.objects.Bucket()
	endpoint := strings.TrimSuffix(f.objects.Storage().Endpoint, "/")
	assetKey, presigned := f.orgAsset(t)
	require.True(t, strings.HasPrefix(presigned, endpoint+"/"+bucket+"/"+assetKey+"?"), "a path-style presigned URL: %s", presigned)
	rootA := "orgs/" + f.orgA.ID.String() + "/"
	rootB := "orgs/" + f.orgB.ID.String() + "/"
	outputKey := rootA + "jobs/" + uuid.NewString() + "/outputs/720p.mp4"

	for name, input := range map[string]string{
		"A's asset key":                       "s3://" + bucket + "/" + assetKey,
		"A's job output key":                  "s3://" + bucket + "/" + outputKey,
		"A's presigned download URL":          presigned,
		"A's asset by a path-style URL":       endpoint + "/" + bucket + "/" + assetKey,
		"A's asset through B's root":          "s3://" + bucket + "/" + rootB + "../" + assetKey,
		"A's asset, encoded dot-dot":          "s3://" + bucket + "/" + rootB + "%2e%2e/" + assetKey,
		"A's asset, encoded slashes":          "s3://" + bucket + "/" + rootB + "x%2F..%2F..%2F" + strings.ReplaceAll(assetKey, "/", "%2F"),
		"A's asset, double-encoded":           "s3://" + bucket + "/" + rootB + "%252e%252e/" + assetKey,
		"A's asset, backslashes":              "s3://" + bucket + "/" + rootB + `..\` + assetKey,
		"A's asset, query":                    "s3://" + bucket + "/" + rootB + "?/../" + assetKey,
		"A's asset with credentials":          "s3://x:y@" + bucket + "/" + assetKey,
		"the bucket's root":                   "s3://" + bucket + "/",
		"another bucket":                      "s3://other-bucket/" + rootB + "a.mp4",
		"another bucket by the endpoint":      endpoint + "/other-bucket/" + rootB + "a.mp4",
		"B's own root, not an object":         "s3://" + bucket + "/" + rootB,
		"B's object with an empty segment":    "s3://" + bucket + "/" + rootB + "x//a.mp4",
		"B's object with a NUL":               "s3://" + bucket + "/" + rootB + "a%00.mp4",
		"B's object with a version parameter": endpoint + "/" + bucket + "/" + rootB + "a.mp4?versionId=1",
	} {
		t.Run(name, func(t *testing.T) { f.refusedInput(t, f.keyB, input) })
	}

	t.Run("A reads its own", func(t *testing.T) {
		for _, input := range []string{"s3://" + bucket + "/" + assetKey, presigned} {
			job := f.submitJob(t, f.keys[auth.Editor], map[string]any{"input": map[string]any{"url": input}, "workflow": "mp4-720p"})
			require.NotNil(t, job.InputURL)
			assert.Equal(t, "s3://"+bucket+"/"+assetKey, *job.InputURL, "stored canonical, without the signature")
		}
	})
	var jobs apiv1.Page[apiv1.Job]
	f.mustDo(t, http.StatusOK, "GET", "/v1/jobs", f.keyB, nil, &jobs)
	assert.Empty(t, jobs.Items, "org B created nothing")
}

// TestJobCaptionsOutsideScope: a caption file is a storage reference
// like the input: org B cannot name org A's objects as captions, however
// spelt, and the refusal names the caption's field; org A's own, given by
// key or by its presigned URL, is stored in canonical s3:// form with the
// language in canonical BCP 47.
func TestJobCaptionsOutsideScope(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	bucket := f.objects.Bucket()
	endpoint := strings.TrimSuffix(f.objects.Storage().Endpoint, "/")
	assetKey, presigned := f.orgAsset(t)
	rootB := "orgs/" + f.orgB.ID.String() + "/"
	ownB := "s3://" + bucket + "/" + rootB + "in.mp4"
	withCaption := func(u string) map[string]any {
		return map[string]any{"input": map[string]any{"url": ownB}, "workflow": "mp4-720p",
			"captions": []map[string]any{{"url": "https://media.example.com/en.vtt", "language": "en", "format": "vtt"}, {"url": u, "language": "fr", "format": "srt"}}}
	}
	for name, u := range map[string]string{
		"A's asset key":                 "s3://" + bucket + "/" + assetKey,
		"A's presigned download URL":    presigned,
		"A's asset by a path-style URL": endpoint + "/" + bucket + "/" + assetKey,
		"A's asset through B's root":    "s3://" + bucket + "/" + rootB + "../" + assetKey,
		"another bucket":                "s3://other-bucket/" + rootB + "fr.srt",
	} {
		t.Run(name, func(t *testing.T) {
			r := f.do(t, "POST", "/v1/jobs", f.keyB, withCaption(u))
			require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s: %s", u, r.Body)
			p := r.problem(t)
			require.Len(t, p.Errors, 1, "%s", r.Body)
			assert.Equal(t, "captions[1].url", p.Errors[0].Field)
			assert.Contains(t, p.Errors[0].Detail, "allowed: s3://"+bucket+"/orgs/")
		})
	}
	var jobs apiv1.Page[apiv1.Job]
	f.mustDo(t, http.StatusOK, "GET", "/v1/jobs", f.keyB, nil, &jobs)
	assert.Empty(t, jobs.Items, "org B created nothing")

	t.Run("A reads its own", func(t *testing.T) {
		job := f.submitJob(t, f.keys[auth.Editor], map[string]any{"input": map[string]any{"url": "https://media.example.com/in.mp4"}, "workflow": "mp4-720p",
			"captions": []map[string]any{{"url": presigned, "language": "pt-br", "format": "vtt"}, {"url": "https://media.example.com/fr.srt", "language": "fra", "format": "srt"}}})
		want := []apiv1.JobCaption{
			{URL: "s3://" + bucket + "/" + assetKey, Language: "pt-BR", Format: "vtt"},
			{URL: "https://media.example.com/fr.srt", Language: "fr", Format: "srt"},
		}
		assert.Equal(t, want, job.Captions)
		var got apiv1.Job
		f.mustDo(t, http.StatusOK, "GET", "/v1/jobs/"+job.ID, f.keys[auth.Viewer], nil, &got)
		assert.Equal(t, want, got.Captions, "stored")
	})
}

// TestBatchSourceOutsideScope: batch prefixes and manifest lines that
// escape the organization's root are refused, with the field (or line)
// named and what is allowed said, and nothing is created.
func TestBatchSourceOutsideScope(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	bucket := f.objects.Bucket()
	endpoint := strings.TrimSuffix(f.objects.Storage().Endpoint, "/")
	rootA := "orgs/" + f.orgA.ID.String() + "/"
	// Org B's library, which org A must not reach.
	rootB := "orgs/" + f.orgB.ID.String() + "/"
	for _, k := range []string{"lib/a.mp4", "lib/b.mp4"} {
		require.NoError(t, f.objects.Put(t.Context(), rootB+k, strings.NewReader("x")))
	}
	f.library(t, "lib", "own.mp4")

	for name, prefix := range map[string]string{
		"dot-dot":          "s3://" + bucket + "/" + rootA + "../" + rootB + "lib/",
		"encoded dot-dot":  "s3://" + bucket + "/" + rootA + "%2E%2E/" + rootB + "lib/",
		"encoded slash":    "s3://" + bucket + "/" + rootA + "..%2F" + f.orgB.ID.String() + "%2Flib/",
		"backslash":        "s3://" + bucket + "/" + rootA + `..\` + f.orgB.ID.String() + `\lib\`,
		"empty segment":    "s3://" + bucket + "/" + rootA + "/lib/",
		"root without '/'": "s3://" + bucket + "/orgs/" + f.orgA.ID.String(),
		"the orgs folder":  "s3://" + bucket + "/orgs/",
		"endpoint URL":     endpoint + "/" + bucket + "/" + rootA + "lib/",
	} {
		t.Run("prefix "+name, func(t *testing.T) {
			r := f.do(t, "POST", "/v1/batches", f.keys[auth.Editor], map[string]any{"workflow": "mp4-720p", "source": map[string]any{"prefix": prefix}})
			require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r.Body)
			p := r.problem(t)
			require.Len(t, p.Errors, 1, "%s", r.Body)
			assert.Equal(t, "source.prefix", p.Errors[0].Field)
			assert.Contains(t, p.Errors[0].Detail, "allowed: s3://"+bucket+"/"+rootA)
		})
	}

	lines := []string{
		"s3://" + bucket + "/" + rootA + "lib/own.mp4", // line 1: fine
		"s3://" + bucket + "/" + rootB + "lib/a.mp4",
		"s3://" + bucket + "/" + rootA + "../" + rootB + "lib/a.mp4",
		"s3://" + bucket + "/" + rootA + "%2e%2e/" + rootB + "lib/a.mp4",
		"s3://" + bucket + "/" + rootA + "lib%2F..%2F..%2F" + f.orgB.ID.String() + "%2Flib%2Fa.mp4",
		endpoint + "/" + bucket + "/" + rootB + "lib/a.mp4",
		"s3://elsewhere/" + rootA + "a.mp4",
	}
	var manifest strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&manifest, "%q\n", l)
	}
	id := f.manifest(t, manifest.String())
	r := f.do(t, "POST", "/v1/batches", f.keys[auth.Editor], map[string]any{"workflow": "mp4-720p", "source": map[string]any{"manifest_asset_id": id}})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r.Body)
	p := r.problem(t)
	var fields []string
	for _, e := range p.Errors {
		fields = append(fields, e.Field)
		assert.Contains(t, e.Detail, "allowed: s3://"+bucket+"/"+rootA, "%s", e.Field)
	}
	assert.Equal(t, []string{"source.lines[2]", "source.lines[3]", "source.lines[4]", "source.lines[5]", "source.lines[6]", "source.lines[7]"}, fields)

	var bs apiv1.Page[apiv1.BatchSummary]
	f.mustDo(t, http.StatusOK, "GET", "/v1/batches", f.keys[auth.Viewer], nil, &bs)
	assert.Empty(t, bs.Items)
}

// TestStorageGrants: only a SuperAdmin grants an organization another
// bucket; the grant admits that bucket (and prefix) for that organization
// only, at submission, and revoking it closes it again.
func TestStorageGrants(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	grants := "/v1/admin/organizations/" + f.orgB.ID.String() + "/storage-grants"
	input := func(u string) map[string]any {
		return map[string]any{"input": map[string]any{"url": u}, "workflow": "mp4-720p"}
	}
	body := map[string]any{"bucket": "partner-library", "prefix": "feeds/"}

	// Nobody below SuperAdmin may grant, list or revoke — not even org B's owner.
	for name, key := range map[string]string{"B's owner": f.keyB, "A's owner": f.keys[auth.Owner], "A's admin": f.keys[auth.Admin]} {
		r := f.do(t, "POST", grants, key, body)
		assert.Equal(t, http.StatusForbidden, r.Status, "%s: %s", name, r.Body)
		r = f.do(t, "GET", grants, key, nil)
		assert.Equal(t, http.StatusForbidden, r.Status, "%s: %s", name, r.Body)
	}
	f.refusedInput(t, f.keyB, "s3://partner-library/feeds/a.mp4")

	super := f.keys[auth.SuperAdmin]
	var g apiv1.StorageGrant
	f.mustDo(t, http.StatusCreated, "POST", grants, super, body, &g)
	assert.Equal(t, f.orgB.ID.String(), g.OrgID)
	assert.Equal(t, "partner-library", g.Bucket)
	assert.Equal(t, "feeds/", g.Prefix)
	r := f.do(t, "POST", grants, super, body)
	assert.Equal(t, http.StatusConflict, r.Status, "the same grant twice: %s", r.Body)
	var listed apiv1.Page[apiv1.StorageGrant]
	f.mustDo(t, http.StatusOK, "GET", grants, super, nil, &listed)
	require.Len(t, listed.Items, 1)
	assert.Equal(t, g.ID, listed.Items[0].ID)

	// Org B may now read under the granted prefix, and only there; org A
	// gained nothing.
	job := f.submitJob(t, f.keyB, input("s3://partner-library/feeds/a.mp4"))
	assert.Equal(t, "s3://partner-library/feeds/a.mp4", *job.InputURL)
	f.refusedInput(t, f.keyB, "s3://partner-library/private/a.mp4")
	f.refusedInput(t, f.keyB, "s3://partner-library/feeds/../private/a.mp4")
	f.refusedInput(t, f.keys[auth.Editor], "s3://partner-library/feeds/a.mp4")
	r = f.do(t, "POST", "/v1/batches", f.keyB, map[string]any{"workflow": "mp4-720p", "source": map[string]any{"prefix": "s3://partner-library/private/"}})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r.Body)
	assert.Equal(t, []string{"source.prefix"}, r.fields(t))

	// Bad grants.
	for name, tc := range map[string]struct {
		body  map[string]any
		field string
	}{
		"the deployment's bucket": {map[string]any{"bucket": f.objects.Bucket()}, "bucket"},
		"not a bucket name":       {map[string]any{"bucket": "s3://partner"}, "bucket"},
		"prefix without '/'":      {map[string]any{"bucket": "partner-library", "prefix": "feeds"}, "prefix"},
		"prefix with dot-dot":     {map[string]any{"bucket": "partner-library", "prefix": "feeds/../"}, "prefix"},
	} {
		r := f.do(t, "POST", grants, super, tc.body)
		require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s: %s", name, r.Body)
		assert.Equal(t, []string{tc.field}, r.fields(t), name)
	}
	r = f.do(t, "POST", "/v1/admin/organizations/"+uuid.NewString()+"/storage-grants", super, body)
	assert.Equal(t, http.StatusNotFound, r.Status, "%s", r.Body)

	// Revoking closes the bucket again.
	r = f.do(t, "DELETE", "/v1/admin/organizations/"+f.orgA.ID.String()+"/storage-grants/"+g.ID, super, nil)
	assert.Equal(t, http.StatusNotFound, r.Status, "a grant is revoked under its own organization: %s", r.Body)
	f.mustDo(t, http.StatusNoContent, "DELETE", grants+"/"+g.ID, super, nil, nil)
	f.refusedInput(t, f.keyB, "s3://partner-library/feeds/a.mp4")
	r = f.do(t, "DELETE", grants+"/"+g.ID, super, nil)
	assert.Equal(t, http.StatusNotFound, r.Status, "%s", r.Body)
}

// TestStoredKeysOutsideScopeAreNotPresigned: an asset or job row whose
// object key was changed behind the API to another organization's is not
// presigned for download.
func TestStoredKeysOutsideScopeAreNotPresigned(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	foreign := "orgs/" + f.orgA.ID.String() + "/assets/" + uuid.NewString() + "/source"

	var a apiv1.Asset
	f.mustDo(t, http.StatusCreated, "POST", "/v1/assets", f.keyB, map[string]any{"filename": "b.mov", "size_bytes": 1}, &a)
	_, err := f.db.Exec(t.Context(), `UPDATE assets SET object_key = $2 WHERE id = $1`, a.ID, foreign)
	require.NoError(t, err)
	r := f.do(t, "GET", "/v1/assets/"+a.ID, f.keyB, nil)
	assert.Equal(t, http.StatusInternalServerError, r.Status, "%s", r.Body)
	assert.NotContains(t, string(r.Body), "X-Amz-Signature")

	job := f.submitJob(t, f.keyB, urlJob())
	_, err = f.db.Exec(t.Context(), `UPDATE jobs SET status = 'completed', finished_at = now(), outputs = $2 WHERE id = $1`,
		job.ID, fmt.Sprintf(`[{"name":"720p.mp4","kind":"file","size_bytes":1,"content_type":"video/mp4","key":%q}]`, foreign))
	require.NoError(t, err)
	r = f.do(t, "GET", "/v1/jobs/"+job.ID+"/outputs", f.keyB, nil)
	assert.Equal(t, http.StatusInternalServerError, r.Status, "%s", r.Body)
	assert.NotContains(t, string(r.Body), "X-Amz-Signature")
}
