package encoder_test

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/encodespec"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
)

// captionJob queues an HLS job of the asset with caption files stored in
// the organization's storage (name → content), given in that order.
func (r *rig) captionJob(asset uuid.UUID, files []apiv1.JobCaption, contents []string) store.Job {
	r.t.Helper()
	ctx := context.Background()
	for i := range files {
		key := "orgs/" + r.org.ID.String() + "/captions/" + uuid.NewString()
		require.NoError(r.t, r.objects.Put(ctx, key, strings.NewReader(contents[i])))
		files[i].URL = "s3://" + r.objects.Bucket() + "/" + key
	}
	spec, ok := encodespec.Builtin("hls-ladder")
	require.True(r.t, ok)
	raw, err := json.Marshal(spec)
	require.NoError(r.t, err)
	caps, err := json.Marshal(files)
	require.NoError(r.t, err)
	j, _, err := r.store.CreateJob(ctx, store.NewJob{OrgID: r.org.ID, PoolID: "default", Lane: "live", MaxAttempts: 3, Spec: raw,
		Metadata: json.RawMessage(`{}`), InputAssetID: &asset, Captions: caps})
	require.NoError(r.t, err)
	require.NoError(r.t, r.queue.Push(ctx, "default", "live", queue.Tenant{Org: r.org.ID.String(), Weight: 1}, j.ID.String(), 0))
	return j
}

// TestEncodeCaptionsEndToEnd: `mpegflow encode` fetches a job's caption
// files through the coordinator's presigned URLs, converts the SubRip one,
// and uploads both as subtitle tracks listed in the master playlist; a
// caption file that is not what it claims fails the job as the input's
// fault, at the first attempt, with nothing uploaded.
func TestEncodeCaptionsEndToEnd(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	asset := r.asset(clip(t, "640x360", 3, true))

	job := r.captionJob(asset, []apiv1.JobCaption{{Language: "fr", Format: "srt"}, {Language: "de", Format: "vtt"}}, []string{
		"1\n00:00:00,500 --> 00:00:01,500\nBonjour\n",
		"WEBVTT\n\n00:01.000 --> 00:02.000\nGuten Tag\n",
	})
	scratch := t.TempDir()
	cmd, logs := r.encode(scratch)
	require.NoError(t, cmd.Wait(), "%s", logs)
	done := r.get(job.ID)
	require.Equal(t, store.JobCompleted, done.Status, "error: %v; logs: %s", done.Error, logs)
	var outs []struct {
		Name, Kind, Key string
		Attributes      map[string]string `json:"attributes"`
	}
	require.NoError(t, json.Unmarshal(done.Outputs, &outs))
	keys := map[string]string{}
	for _, o := range outs {
		keys[o.Name] = o.Key
		if o.Kind == apiv1.OutputSubtitles {
			assert.Equal(t, apiv1.SubtitleSourceSidecar, o.Attributes[apiv1.SubtitleAttrSource], o.Name)
		}
	}
	for _, name := range []string{"subtitles/fr.vtt", "subtitles/fr.m3u8", "subtitles/de.vtt", "subtitles/de.m3u8", "master.m3u8"} {
		require.Contains(t, keys, name)
	}
	read := func(name string) string {
		rc, _, err := r.objects.OpenFrom(context.Background(), keys[name], 0, "")
		require.NoError(t, err)
		defer rc.Close()
		var b strings.Builder
		_, err = io.Copy(&b, rc)
		require.NoError(t, err)
		return b.String()
	}
	assert.Contains(t, read("subtitles/fr.vtt"), "00:00.500 --> 00:01.500\nBonjour")
	assert.Contains(t, read("master.m3u8"), `#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="de",LANGUAGE="de",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI="subtitles/de.m3u8"`)
	emptyDir(t, scratch)

	bad := r.captionJob(asset, []apiv1.JobCaption{{Language: "fr", Format: "srt"}}, []string{"#EXTM3U\nfile:/etc/passwd\n"})
	scratch = t.TempDir()
	cmd, logs = r.encode(scratch)
	require.NoError(t, cmd.Wait(), "%s", logs)
	got := r.get(bad.ID)
	require.Equal(t, store.JobFailed, got.Status, "logs %s", logs)
	require.NotNil(t, got.Error)
	assert.Contains(t, *got.Error, "caption file 1 (fr, SubRip): it holds no cue")
	assert.Equal(t, 1, got.Attempts, "not retried: retrying cannot help")
	assert.JSONEq(t, `[]`, string(got.Outputs), "nothing uploaded")
	emptyDir(t, scratch)
}
