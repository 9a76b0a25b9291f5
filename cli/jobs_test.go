package cli

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/mpegflow/mpegflow/apiserver/apiservertest"
	"github.com/mpegflow/mpegflow/client"
)

// TestJobsSubmitFileWaitDownload is the first five minutes: a local file is
// uploaded, encoded (here the test plays the encoder), followed to the end
// and its outputs downloaded with their paths.
func TestJobsSubmitFileWaitDownload(t *testing.T) {
	srv := apiservertest.New(t, apiservertest.Options{})
	useServer(t, srv.URL, srv.OwnerKey)
	c := apiClient(t, srv)
	dir := t.TempDir()
	src := filepath.Join(dir, "clip.mov")
	require.NoError(t, os.WriteFile(src, []byte("not really a movie"), 0o600))

	cli := background(t, "jobs", "submit", src, "--workflow", "hls-ladder", "--wait", "-o", "json", "--priority", "5")
	cli.waitFor(t, cli.stderr, "job.queued")
	page, err := c.ListJobs(t.Context(), client.JobFilter{}, "")
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	id := page.Items[0].ID
	run := srv.Claim(t, id)
	cli.waitFor(t, cli.stderr, "job.started")
	run.Progress(0.5)
	cli.waitFor(t, cli.stderr, "job.progress")
	run.Complete(map[string][]byte{"hls/master.m3u8": []byte("#EXTM3U\n"), "hls/720p/seg_000.ts": []byte("segment")})
	r := cli.wait(t)

	var job client.Job
	require.NoError(t, json.Unmarshal([]byte(r.OK(t)), &job), r.Stdout)
	assert.Equal(t, id, job.ID)
	assert.Equal(t, client.JobCompleted, job.Status)
	assert.Equal(t, 5, job.Priority)
	require.NotNil(t, job.InputAssetID, "a local file is submitted as an asset")
	assert.Contains(t, r.Stderr, "job "+id+" submitted")
	assert.Contains(t, r.Stderr, id+"  job.progress  50%")
	assert.Contains(t, r.Stderr, id+"  job.completed")

	// The uploaded source reads back byte for byte.
	copyPath := filepath.Join(dir, "copy.mov")
	out := runCLI(t, nil, "assets", "download", *job.InputAssetID, "-o", copyPath).OK(t)
	assert.Equal(t, copyPath+"\n", out)
	b, err := os.ReadFile(copyPath)
	require.NoError(t, err)
	assert.Equal(t, "not really a movie", string(b))

	outDir := filepath.Join(dir, "demo-output")
	out = runCLI(t, nil, "jobs", "download", id, "--dir", outDir).OK(t)
	assert.ElementsMatch(t, []string{filepath.Join(outDir, "hls/master.m3u8"), filepath.Join(outDir, "hls/720p/seg_000.ts")},
		strings.Fields(out))
	b, err = os.ReadFile(filepath.Join(outDir, "hls", "720p", "seg_000.ts"))
	require.NoError(t, err)
	assert.Equal(t, "segment", string(b))
	parts, err := filepath.Glob(filepath.Join(outDir, "hls", "*.part"))
	require.NoError(t, err)
	assert.Empty(t, parts)
}

// TestJobsSubmitWaitFailure: a waited-for job that fails exits 1 with its
// error, and stdout still holds the job.
func TestJobsSubmitWaitFailure(t *testing.T) {
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	useServer(t, srv.URL, srv.OwnerKey)
	c := apiClient(t, srv)

	cli := background(t, "jobs", "submit", "https://media.example.com/in.mp4", "--workflow", "mp4-720p", "--wait", "-o", "yaml", "--lane", "backfill")
	cli.waitFor(t, cli.stderr, "job.queued")
	p, err := c.ListJobs(t.Context(), client.JobFilter{}, "")
	require.NoError(t, err)
	require.Len(t, p.Items, 1)
	id := p.Items[0].ID
	srv.Claim(t, id).Fail("ffmpeg exited 1: Invalid data found when processing input")
	r := cli.wait(t)
	line := r.Failed(t, 1)
	assert.Equal(t, "mpegflow: job "+id+" failed: ffmpeg exited 1: Invalid data found when processing input", line)
	var job client.Job
	require.NoError(t, yaml.Unmarshal([]byte(r.Stdout), &job), r.Stdout)
	assert.Equal(t, client.JobFailed, job.Status)
	assert.Equal(t, "backfill", job.Lane)
}

// TestJobsBadInput: every mistake is one line and a non-zero exit, 2 for a
// command line that cannot run.
func TestJobsBadInput(t *testing.T) {
	srv := apiservertest.New(t, apiservertest.Options{})
	c := apiClient(t, srv)
	queued := submitURLJob(t, c)
	missingID := uuid.NewString()
	closed := apiservertest.ClosedURL(t)
	for name, tc := range map[string]struct {
		server, key string
		args        []string
		code        int
		want        string
	}{
		"missing file": {args: []string{"jobs", "submit", "/nonexistent/clip.mov", "--workflow", "hls-ladder"}, code: 1,
			want: "mpegflow: input file /nonexistent/clip.mov does not exist (give a local file or an https:// or s3:// URL)"},
		"unknown workflow": {args: []string{"jobs", "submit", "https://x.example/a.mp4", "--workflow", "hls-ladders"}, code: 1,
			want: `mpegflow: unknown workflow "hls-ladders": want a built-in (cmaf-ladder, dash-ladder, hls-ladder, mp4-720p, thumbnails), the name of one of your workflows, or a workflow id`},
		"unknown workflow id": {args: []string{"jobs", "submit", "https://x.example/a.mp4", "--workflow", missingID}, code: 1,
			want: "mpegflow: workflow " + missingID + " not found ('mpegflow workflows list' shows yours)"},
		"unsupported scheme": {args: []string{"jobs", "submit", "ftp://x.example/a.mp4", "--workflow", "mp4-720p", "--priority", "500"}, code: 1,
			want: "mpegflow: input file ftp://x.example/a.mp4 does not exist (give a local file or an https:// or s3:// URL)"},
		"invalid field": {args: []string{"jobs", "submit", "https://x.example/a.mp4", "--workflow", "mp4-720p", "--priority", "500"}, code: 1,
			want: "mpegflow: submit job: 422 validation: priority: must be between -100 and 100"},
		"unreachable server": {server: closed, args: []string{"jobs", "list"}, code: 1,
			want: "mpegflow: list jobs: MpegFlow server unreachable at " + closed + ": connection refused; start one with `mpegflow dev`, or point --server or MPEGFLOW_SERVER at a running server"},
		"revoked key": {key: "mfk_revoked", args: []string{"jobs", "get", queued.ID}, code: 1,
			want: "mpegflow: get job " + queued.ID + ": 401 unauthenticated: the API key is unknown or revoked; pass a valid key with --api-key or MPEGFLOW_API_KEY (`mpegflow dev` prints one for a local stack)"},
		"flag server wins": {args: []string{"jobs", "list", "--server", closed}, code: 1, want: "unreachable at " + closed},
		"missing job":      {args: []string{"jobs", "get", missingID}, code: 1, want: "mpegflow: get job " + missingID + ": 404 not-found: job not found"},
		"watch missing":    {args: []string{"jobs", "watch", missingID}, code: 1, want: "mpegflow: watch job " + missingID + ": 404 not-found: job not found"},
		"download queued": {args: []string{"jobs", "download", queued.ID}, code: 1,
			want: "mpegflow: job " + queued.ID + " is queued: only a completed job has outputs ('mpegflow jobs watch " + queued.ID + "' follows it)"},
		"no workflow": {args: []string{"jobs", "submit", "https://x.example/a.mp4"}, code: 2, want: "mpegflow: give exactly one of --workflow NAME|ID or --spec-file FILE"},
		"two encodes": {args: []string{"jobs", "submit", "https://x.example/a.mp4", "-w", "mp4-720p", "--spec-file", "s.json"}, code: 2, want: "give exactly one of"},
		"bad lane":    {args: []string{"jobs", "submit", "https://x.example/a.mp4", "-w", "mp4-720p", "--lane", "fast"}, code: 2, want: `mpegflow: --lane must be live or backfill, not "fast"`},
		"caption without language": {args: []string{"jobs", "submit", "https://x.example/a.mp4", "-w", "mp4-720p", "--caption", "https://x.example/a.srt"}, code: 2,
			want: `mpegflow: --caption takes LANGUAGE=URL (an https:// or s3:// URL), not "https://x.example/a.srt"`},
		"caption of another format": {args: []string{"jobs", "submit", "https://x.example/a.mp4", "-w", "mp4-720p", "--caption", "fr=https://x.example/a.ass?v=1"}, code: 2,
			want: "mpegflow: --caption fr=https://x.example/a.ass?v=1: the URL must end in .srt (SubRip) or .vtt (WebVTT)"},
		"caption language refused": {args: []string{"jobs", "submit", "https://x.example/a.mp4", "-w", "mp4-720p", "--caption", "und=https://x.example/a.srt"}, code: 1,
			want: "mpegflow: submit job: 422 validation: captions[0].language: must name a language, not und"},
		"no id":            {args: []string{"jobs", "get"}, code: 2, want: "mpegflow: usage: mpegflow jobs get ID"},
		"no ids to watch":  {args: []string{"jobs", "watch"}, code: 2, want: "mpegflow: usage: mpegflow jobs watch ID..."},
		"bad format":       {args: []string{"jobs", "list", "-o", "xml"}, code: 2, want: `want table, json or yaml, not "xml"`},
		"bad status":       {args: []string{"jobs", "list", "--status", "done"}, code: 2, want: `--status must be one of queued, running, retry_wait, completed, failed, cancelled, not "done"`},
		"unknown flag":     {args: []string{"jobs", "list", "--colour"}, code: 2, want: "unknown flag: --colour"},
		"unknown verb":     {args: []string{"jobs", "lsit"}, code: 2, want: `mpegflow: unknown command "lsit" for "mpegflow jobs"; did you mean "list"?`},
		"spec not json":    {args: []string{"jobs", "submit", "https://x.example/a.mp4", "--spec-file", "jobs_test.go"}, code: 1, want: "mpegflow: spec file jobs_test.go is not valid JSON"},
		"no configuration": {server: "-", args: []string{"pools", "list"}, code: 1, want: "mpegflow: no MpegFlow server configured: run `mpegflow login --server URL` or `mpegflow dev`"},
	} {
		t.Run(name, func(t *testing.T) {
			server, key := srv.URL, srv.OwnerKey
			if tc.server != "" {
				server = tc.server
			}
			if tc.key != "" {
				key = tc.key
			}
			useServer(t, server, key)
			if server == "-" {
				useServer(t, "", "")
			}
			line := runCLI(t, nil, tc.args...).Failed(t, tc.code)
			if strings.HasPrefix(tc.want, "mpegflow: ") {
				assert.True(t, strings.HasPrefix(line, tc.want), "got  %s\nwant %s", line, tc.want)
			} else {
				assert.Contains(t, line, tc.want)
			}
		})
	}
}

// Caption files given with --caption reach the job in canonical form, the
// format taken from each URL's extension.
func TestJobsSubmitCaptions(t *testing.T) {
	srv := apiservertest.New(t, apiservertest.Options{})
	useServer(t, srv.URL, srv.OwnerKey)
	var job client.Job
	out := runCLI(t, nil, "jobs", "submit", "https://x.example/a.mp4", "-w", "hls-ladder", "-o", "json",
		"--caption", "pt-br=https://x.example/subs/a.pt.VTT?sig=1", "--caption", "fra=https://x.example/subs/a.fr.srt").OK(t)
	require.NoError(t, json.Unmarshal([]byte(out), &job), out)
	assert.Equal(t, []client.JobCaption{
		{URL: "https://x.example/subs/a.pt.VTT?sig=1", Language: "pt-BR", Format: "vtt"},
		{URL: "https://x.example/subs/a.fr.srt", Language: "fr", Format: "srt"},
	}, job.Captions)
}

func TestJobsListGetCancelFormats(t *testing.T) {
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	useServer(t, srv.URL, srv.OwnerKey)
	c := apiClient(t, srv)
	var ids []string
	for range 3 {
		ids = append(ids, submitURLJob(t, c).ID)
	}

	var page client.Page[client.Job]
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "jobs", "list", "-o", "json").OK(t)), &page))
	assert.Len(t, page.Items, 3)
	assert.Equal(t, ids[2], page.Items[0].ID, "newest first")

	page = client.Page[client.Job]{}
	require.NoError(t, yaml.Unmarshal([]byte(runCLI(t, nil, "jobs", "list", "-o", "yaml").OK(t)), &page))
	assert.Len(t, page.Items, 3)

	r := runCLI(t, nil, "jobs", "list", "--limit", "2")
	lines := strings.Split(strings.TrimSpace(r.OK(t)), "\n")
	require.Len(t, lines, 3)
	assert.Equal(t, []string{"ID", "STATUS", "PROGRESS", "POOL", "LANE", "PRIORITY", "ATTEMPTS", "AGE"}, strings.Fields(lines[0]))
	assert.Equal(t, []string{ids[2], "queued", "0%", "default", "live", "0", "0/3"}, strings.Fields(lines[1])[:7])
	assert.Contains(t, r.Stderr, "more: add --cursor ")

	r = runCLI(t, nil, "jobs", "list", "--limit", "2", "--all")
	assert.Len(t, strings.Split(strings.TrimSpace(r.OK(t)), "\n"), 4)
	assert.Empty(t, r.Stderr)

	var job client.Job
	require.NoError(t, yaml.Unmarshal([]byte(runCLI(t, nil, "jobs", "cancel", ids[0], "-o", "yaml").OK(t)), &job))
	assert.Equal(t, client.JobCancelled, job.Status)

	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "jobs", "list", "--status", "cancelled", "-o", "json").OK(t)), &page))
	require.Len(t, page.Items, 1)
	assert.Equal(t, ids[0], page.Items[0].ID)

	out := runCLI(t, nil, "jobs", "get", ids[1]).OK(t)
	assert.True(t, strings.HasPrefix(out, "ID "), out)
	assert.Contains(t, out, ids[1])
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "jobs", "get", ids[1], "-o", "json").OK(t)), &job))
	assert.Equal(t, ids[1], job.ID)

	r = runCLI(t, nil, "jobs", "cancel", ids[0])
	assert.Equal(t, "mpegflow: cancel job "+ids[0]+": 409 conflict: job is already cancelled", r.Failed(t, 1))
}

// TestJobsWatch follows two jobs over the WebSocket, one line per event, and
// exits 1 because one of them failed.
func TestJobsWatch(t *testing.T) {
	srv := apiservertest.New(t, apiservertest.Options{})
	useServer(t, srv.URL, srv.OwnerKey)
	c := apiClient(t, srv)
	a, b := submitURLJob(t, c), submitURLJob(t, c)

	cli := background(t, "jobs", "watch", a.ID, b.ID, "--server", srv.URL)
	cli.waitFor(t, cli.stdout, a.ID+"  job.queued")
	cli.waitFor(t, cli.stdout, b.ID+"  job.queued")
	runA := srv.Claim(t, a.ID)
	runA.Progress(0.75)
	cli.waitFor(t, cli.stdout, a.ID+"  job.progress  75%")
	runA.Complete(nil)
	cli.waitFor(t, cli.stdout, a.ID+"  job.completed")
	srv.Claim(t, b.ID).Fail("out of memory")
	r := cli.wait(t)
	assert.Equal(t, "mpegflow: job "+b.ID+" failed: out of memory", r.Failed(t, 1))
	assert.Contains(t, r.Stdout, b.ID+"  job.failed  error: out of memory")

	// -o json: one event per line; a watch of finished jobs ends at once.
	r = runCLI(t, nil, "jobs", "watch", a.ID, "-o", "json")
	sc := bufio.NewScanner(strings.NewReader(r.OK(t)))
	var evs []client.Event
	for sc.Scan() {
		var ev client.Event
		require.NoError(t, json.Unmarshal(sc.Bytes(), &ev), sc.Text())
		evs = append(evs, ev)
	}
	require.Len(t, evs, 1)
	assert.Equal(t, client.EventCompleted, evs[0].Type)
}

// TestJobsDownloadRefusesEscapingNames: outputs whose names would land
// outside --dir are refused before anything is written.
func TestJobsDownloadRefusesEscapingNames(t *testing.T) {
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	useServer(t, srv.URL, srv.OwnerKey)
	c := apiClient(t, srv)
	for name, hostile := range map[string]string{
		"parent":     "../escape.txt",
		"nested":     "hls/../../escape.txt",
		"absolute":   "/tmp/escape.txt",
		"backslash":  `..\escape.txt`,
		"empty path": "",
	} {
		t.Run(name, func(t *testing.T) {
			j := submitURLJob(t, c)
			srv.Claim(t, j.ID).Complete(map[string][]byte{"ok.txt": []byte("ok"), hostile: []byte("evil")})
			base := t.TempDir()
			dst := filepath.Join(base, "out")
			line := runCLI(t, nil, "jobs", "download", j.ID, "--dir", dst).Failed(t, 1)
			assert.Contains(t, line, "refusing output")
			assert.Contains(t, line, "would land outside "+dst)
			assert.NoDirExists(t, dst, "nothing written")
			assert.NoFileExists(t, filepath.Join(base, "escape.txt"))
		})
	}
}

// TestJobsDownloadRefusesHiddenCharacters: an output name inside --dir is
// still refused when a path element is no plain file name, such as one with
// a bidirectional override that shows "gnp.exe" as "exe.png".
func TestJobsDownloadRefusesHiddenCharacters(t *testing.T) {
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	useServer(t, srv.URL, srv.OwnerKey)
	c := apiClient(t, srv)
	for name, hostile := range map[string]string{
		"bidi override":   "hls/poster\u202egnp.exe",
		"zero width":      "hls\u200b/index.m3u8",
		"control":         "hls/a\x01.m4s",
		"dot-only folder": "hls/./index.m3u8",
	} {
		t.Run(name, func(t *testing.T) {
			j := submitURLJob(t, c)
			srv.Claim(t, j.ID).Complete(map[string][]byte{"ok.txt": []byte("ok"), hostile: []byte("evil")})
			dst := filepath.Join(t.TempDir(), "out")
			line := runCLI(t, nil, "jobs", "download", j.ID, "--dir", dst).Failed(t, 1)
			assert.Contains(t, line, "refusing output")
			assert.NoDirExists(t, dst, "nothing written")
		})
	}
}

// TestJobsSubmitWithOwnWorkflowAndSpec: --workflow takes the name or id of
// one of the organization's workflows; --spec-file an inline spec, from
// stdin with '-'.
func TestJobsSubmitWithOwnWorkflowAndSpec(t *testing.T) {
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	useServer(t, srv.URL, srv.OwnerKey)
	doc := workflowDoc(t, "web-720")
	var w client.Workflow
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, strings.NewReader(string(doc)), "workflows", "create", "-f", "-", "-o", "json").OK(t)), &w))

	for _, ref := range []string{"web-720", w.ID} {
		var job client.Job
		require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "jobs", "submit", "https://x.example/a.mp4", "--workflow", ref, "-o", "json").OK(t)), &job))
		require.NotNil(t, job.WorkflowID)
		assert.Equal(t, w.ID, *job.WorkflowID)
	}

	var spec struct {
		Spec json.RawMessage `json:"spec"`
	}
	require.NoError(t, json.Unmarshal(doc, &spec))
	specFile := filepath.Join(t.TempDir(), "spec.json")
	require.NoError(t, os.WriteFile(specFile, spec.Spec, 0o600))
	input := "s3://" + srv.Objects.Bucket() + "/orgs/" + srv.OrgID.String() + "/in.mp4"
	var job client.Job
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "jobs", "submit", input, "--spec-file", specFile, "-o", "json",
		"--metadata", "customer=acme", "--idempotency-key", "k-1").OK(t)), &job))
	assert.Nil(t, job.WorkflowID)
	assert.JSONEq(t, `{"customer":"acme"}`, string(job.Metadata))
	assert.Equal(t, input, deref(job.InputURL))

	// The same key and body answer the same job.
	var again client.Job
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "jobs", "submit", input, "--spec-file", specFile, "-o", "json",
		"--metadata", "customer=acme", "--idempotency-key", "k-1").OK(t)), &again))
	assert.Equal(t, job.ID, again.ID)
}
