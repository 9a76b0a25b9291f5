package dispatcher

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/objscope"
	"github.com/mpegflow/mpegflow/internal/store"
)

// logBuffer collects log lines written from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newJob commits a queued live job of env's organization in the default
// pool, without pushing it.
func (e *env) newJob(nj store.NewJob) uuid.UUID {
	e.t.Helper()
	nj.OrgID, nj.PoolID, nj.Lane, nj.MaxAttempts = e.org.ID, store.DefaultPoolID, apiv1.LaneLive, 3
	nj.Spec, nj.Metadata = testSpec, json.RawMessage(`{}`)
	j, _, err := e.store.CreateJob(e.t.Context(), nj)
	require.NoError(e.t, err)
	return j.ID
}

// TestClaimRefusesInputOutsideScope: the coordinator resolves a claimed
// job's input against the job's organization again before presigning. A row
// changed behind the API (input_url, or the input asset's object key, set to
// another organization's object) or a storage grant revoked while the job
// waited is never presigned: the job fails for good with an event, the
// refusal is logged with job_id and org_id, and the claim hands out the
// next job instead.
func TestClaimRefusesInputOutsideScope(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t)
	logs := &logBuffer{}
	e.log = slog.New(slog.NewJSONHandler(logs, nil))
	w := e.worker(e.start(Config{}).addr, store.DefaultPoolID)
	other, err := e.store.BootstrapOrg(ctx, "Other", "owner@other.example", auth.Owner)
	require.NoError(t, err)
	bucket := e.objects.Bucket()
	root := "orgs/" + e.org.ID.String() + "/"
	own := "s3://" + bucket + "/" + root + "in.mp4"
	foreignKey := "orgs/" + other.Org.ID.String() + "/assets/" + uuid.NewString() + "/source"

	// A granted bucket is presigned while the grant stands.
	grant, err := e.store.CreateStorageGrant(ctx, e.org.ID, objscope.Grant{Bucket: "partner-library", Prefix: "feeds/"}, other.User.ID)
	require.NoError(t, err)
	granted := "s3://partner-library/feeds/a.mp4"
	e.push(store.DefaultPoolID, e.newJob(store.NewJob{InputURL: &granted}))
	job := w.mustClaim(t, "pod-0")
	assert.True(t, job.GetInputPresigned())
	assert.Contains(t, job.GetInputUrl(), "/partner-library/feeds/a.mp4?")

	// Rows the API accepted, then changed behind it.
	byURL := e.newJob(store.NewJob{InputURL: &own})
	_, err = e.db.Exec(ctx, `UPDATE jobs SET input_url = $2 WHERE id = $1`, byURL, "s3://"+bucket+"/"+foreignKey)
	require.NoError(t, err)
	asset, err := e.store.CreateAsset(ctx, e.org.ID, "a.mov", "video/quicktime", nil, func(id uuid.UUID) string { return root + "assets/" + id.String() + "/source" })
	require.NoError(t, err)
	byAsset := e.newJob(store.NewJob{InputAssetID: &asset.ID})
	_, err = e.db.Exec(ctx, `UPDATE assets SET object_key = $2 WHERE id = $1`, asset.ID, foreignKey)
	require.NoError(t, err)
	byTraversal := e.newJob(store.NewJob{InputURL: &own})
	_, err = e.db.Exec(ctx, `UPDATE jobs SET input_url = $2 WHERE id = $1`, byTraversal, "s3://"+bucket+"/"+root+"%2e%2e/../"+foreignKey)
	require.NoError(t, err)
	// A grant revoked while its job waited.
	byRevoked := e.newJob(store.NewJob{InputURL: &granted})
	require.NoError(t, e.store.DeleteStorageGrant(ctx, e.org.ID, grant.ID))
	fine := e.newJob(store.NewJob{InputURL: &own})
	e.push(store.DefaultPoolID, byURL, byAsset, byTraversal, byRevoked, fine)

	job = w.mustClaim(t, "pod-1")
	assert.Equal(t, fine.String(), job.GetId(), "the refused jobs are not handed out; the next one is")
	assert.True(t, job.GetInputPresigned())
	assert.Contains(t, job.GetInputUrl(), "/"+bucket+"/"+root+"in.mp4?")
	assert.Zero(t, e.queueLen(store.DefaultPoolID))

	for name, id := range map[string]uuid.UUID{"input_url": byURL, "asset key": byAsset, "traversal": byTraversal, "revoked grant": byRevoked} {
		j := e.job(id)
		assert.Equal(t, store.JobFailed, j.Status, name)
		require.NotNil(t, j.Error, name)
		assert.Contains(t, *j.Error, "input refused at claim", name)
		assert.Contains(t, *j.Error, "allowed: s3://"+bucket+"/"+root, name)
		assert.Equal(t, 1, j.Attempts, "%s: failed at the first claim, not retried", name)
		evs, err := e.store.ListJobEvents(ctx, e.org.ID, id, 0, 20)
		require.NoError(t, err)
		require.NotEmpty(t, evs)
		assert.Equal(t, "job.failed", evs[len(evs)-1].Type, name)
		assert.Contains(t, string(evs[len(evs)-1].Data), "input refused at claim", name)

		var logged map[string]any
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, `"job_id":"`+id.String()+`"`) && strings.Contains(line, "refused to presign") {
				require.NoError(t, json.Unmarshal([]byte(line), &logged))
			}
		}
		require.NotNil(t, logged, "%s: the refusal is logged", name)
		assert.Equal(t, "WARN", logged["level"], name)
		assert.Equal(t, e.org.ID.String(), logged["org_id"], name)
	}
	assert.NotContains(t, logs.String(), "X-Amz-Signature", "nothing presigned reaches the log")

	// With only a refused job queued, the worker gets nothing.
	alone := e.newJob(store.NewJob{InputURL: &own})
	_, err = e.db.Exec(ctx, `UPDATE jobs SET input_url = $2 WHERE id = $1`, alone, "s3://other-bucket/"+root+"in.mp4")
	require.NoError(t, err)
	e.push(store.DefaultPoolID, alone)
	got, err := w.claim(ctx, "pod-2", 0)
	require.NoError(t, err)
	assert.Nil(t, got, "no job, so no presigned URL")
	assert.Equal(t, store.JobFailed, e.job(alone).Status)
}

// TestClaimResolvesCaptions: a job's caption files are resolved as its
// input is. Storage references of the organization are presigned (and
// flagged so), customer https URLs are handed out as they are for the
// worker's SSRF guard, and a caption row changed behind the API to
// another organization's object fails the job at claim, for good, without
// presigning anything.
func TestClaimResolvesCaptions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t)
	w := e.worker(e.start(Config{}).addr, store.DefaultPoolID)
	other, err := e.store.BootstrapOrg(ctx, "Other", "owner@other.example", auth.Owner)
	require.NoError(t, err)
	bucket := e.objects.Bucket()
	root := "orgs/" + e.org.ID.String() + "/"
	own := "s3://" + bucket + "/" + root + "in.mp4"
	captions := func(cs ...apiv1.JobCaption) json.RawMessage {
		b, err := json.Marshal(cs)
		require.NoError(t, err)
		return b
	}

	fine := e.newJob(store.NewJob{InputURL: &own, Captions: captions(
		apiv1.JobCaption{URL: "s3://" + bucket + "/" + root + "fr.srt", Language: "fr", Format: "srt"},
		apiv1.JobCaption{URL: "https://media.example.com/pt.vtt", Language: "pt-BR", Format: "vtt"},
	)})
	e.push(store.DefaultPoolID, fine)
	job := w.mustClaim(t, "pod-0")
	require.Equal(t, fine.String(), job.GetId())
	got := job.GetCaptions()
	require.Len(t, got, 2)
	assert.True(t, got[0].GetPresigned())
	assert.Contains(t, got[0].GetUrl(), "/"+bucket+"/"+root+"fr.srt?")
	assert.Equal(t, "fr", got[0].GetLanguage())
	assert.Equal(t, "srt", got[0].GetFormat())
	assert.False(t, got[1].GetPresigned())
	assert.Equal(t, "https://media.example.com/pt.vtt", got[1].GetUrl())
	assert.Equal(t, "pt-BR", got[1].GetLanguage())

	changed := e.newJob(store.NewJob{InputURL: &own, Captions: captions(apiv1.JobCaption{URL: "s3://" + bucket + "/" + root + "fr.srt", Language: "fr", Format: "srt"})})
	_, err = e.db.Exec(ctx, `UPDATE jobs SET captions = $2 WHERE id = $1`, changed,
		captions(apiv1.JobCaption{URL: "s3://" + bucket + "/orgs/" + other.Org.ID.String() + "/secret.srt", Language: "fr", Format: "srt"}))
	require.NoError(t, err)
	e.push(store.DefaultPoolID, changed)
	none, err := w.claim(ctx, "pod-1", 0)
	require.NoError(t, err)
	assert.Nil(t, none, "the job is not handed out")
	j := e.job(changed)
	assert.Equal(t, store.JobFailed, j.Status)
	require.NotNil(t, j.Error)
	assert.Contains(t, *j.Error, "input refused at claim: a caption file")
	assert.Contains(t, *j.Error, "allowed: s3://"+bucket+"/"+root)
	assert.Equal(t, 1, j.Attempts, "not retried")
}
