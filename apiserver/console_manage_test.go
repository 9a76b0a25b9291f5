package apiserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/console/consoletest"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

// waitTrue polls the page's boolean expression expr until it holds, for
// at most 20 s.
func waitTrue(ctx context.Context, t *testing.T, expr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		require.True(t, time.Now().Before(deadline), "still false after 20 s: %s (%v)", expr, err)
		time.Sleep(100 * time.Millisecond)
	}
}

// chooseFile picks the submit form's file source and sets its file input.
func chooseFile(path string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Evaluate[chromedp.Void](`(() => { const s = document.getElementById("submit-source"); s.value = "file"; s.dispatchEvent(new Event("change")); })()`),
		chromedp.SetUploadFiles(chromedp.ID("submit-file"), []string{path}))
}

// TestConsoleUploadsAFile: an Editor submits a job from a file on their
// device; the console uploads it straight to storage (one presigned PUT
// for a small clip, presigned parts for a file above the multipart
// threshold), shows the bytes sent, and the job's input is the new asset,
// whose object holds exactly the file's bytes. An upload storage never
// receives fails in plain words and leaves no asset behind.
func TestConsoleUploadsAFile(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	base := "http://" + f.serve(t)
	require.NoError(t, f.objects.AllowBrowserUploads(t.Context(), []string{base}))
	// The pages may reach storage, and of storage only the bucket.
	source, err := f.objects.ConnectSource(t.Context())
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(source, "/"+f.objects.Bucket()+"/"), "path-style: the bucket's path, not the whole endpoint: %s", source)
	page, err := http.Get(base + "/console")
	require.NoError(t, err)
	page.Body.Close()
	assert.Contains(t, page.Header.Get("Content-Security-Policy"), "; connect-src 'self' "+source+"; ")
	ctx, problems := consoletest.Browser(t)
	shots := consoletest.Screenshots(t)
	dir := t.TempDir()
	clip := filepath.Join(dir, "clip.mp4")
	testenv.Clip(t, clip, 2, "320x240")
	big := filepath.Join(dir, "big.mov")
	random := make([]byte, 12<<20+12345) // three parts of 5 MiB: the fixture's threshold is 6 MiB
	_, err = rand.Read(random)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(big, random, 0o600))
	editor := f.keys[auth.Editor]

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/console"),
		consoletest.SignIn(editor)))
	rowsBefore := 0
	for _, file := range []string{clip, big} {
		want, err := os.ReadFile(file)
		require.NoError(t, err)
		require.NoError(t, chromedp.Do(ctx,
			chooseFile(file),
			chromedp.SetValue(chromedp.ID("submit-workflow"), "mp4-720p"),
			chromedp.Click(chromedp.CSS("#submit button[type=submit]"))))
		rowsBefore++
		waitTrue(ctx, t, fmt.Sprintf(`document.querySelectorAll("#jobs tbody tr").length === %d || document.querySelector("#submit .error").innerText !== ""`, rowsBefore))
		require.Empty(t, consoletest.TextOf(ctx, t, "#submit .error"), "uploading %s", file)
		assert.Contains(t, consoletest.TextOf(ctx, t, "#upload-sent"), "(100 %)")
		attr, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("#jobs tbody tr"), "data-job"))
		require.NoError(t, err)
		var job apiv1.Job
		f.mustDo(t, http.StatusOK, "GET", "/v1/jobs/"+attr.Value, editor, nil, &job)
		require.NotNil(t, job.InputAssetID, "the job reads the uploaded asset")
		var asset apiv1.Asset
		f.mustDo(t, http.StatusOK, "GET", "/v1/assets/"+*job.InputAssetID, editor, nil, &asset)
		assert.Equal(t, filepath.Base(file), asset.Filename)
		if file == big {
			assert.Equal(t, "uploaded", asset.UploadStatus, "sent in parts and completed")
		}
		resp, err := http.Get(asset.Download.URL)
		require.NoError(t, err)
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		assert.True(t, bytes.Equal(want, got), "storage holds the file byte for byte (%d of %d bytes)", len(got), len(want))
	}
	consoletest.Shoot(t, ctx, shots, "upload")

	// Storage refuses this console (its CORS rule names another origin):
	// a multipart upload and a single PUT each fail in words, no job is
	// made, and the asset made for each is deleted again (the multipart
	// upload aborted with it).
	require.NoError(t, f.objects.AllowBrowserUploads(t.Context(), []string{"https://elsewhere.example"}))
	for _, file := range []string{big, clip} {
		require.NoError(t, chromedp.Do(ctx, chooseFile(file), chromedp.Click(chromedp.CSS("#submit button[type=submit]"))))
		waitTrue(ctx, t, fmt.Sprintf(`document.querySelector("#submit .error").innerText !== "" || document.querySelectorAll("#jobs tbody tr").length > %d`, rowsBefore))
		assert.Contains(t, consoletest.TextOf(ctx, t, "#submit .error"), "could not reach storage", "uploading %s", file)
		var assets apiv1.Page[apiv1.Asset]
		f.mustDo(t, http.StatusOK, "GET", "/v1/assets?limit=100", editor, nil, &assets)
		assert.Len(t, assets.Items, 2, "the failed upload's asset of %s is gone; the two uploaded stay", file)
		assert.Equal(t, rowsBefore, mustCount(ctx, t, "#jobs tbody tr"), "no job for a failed upload")
	}
	assert.Empty(t, problems(), "the pages broke their Content-Security-Policy or threw")
}

func mustCount(ctx context.Context, t *testing.T, sel string) int {
	t.Helper()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
	require.NoError(t, err)
	return n
}

// TestConsolePoolSettings: a pool's page shows what it runs; an Admin
// edits its settings, sees the plan of the edit (the changed line marked)
// while the pool keeps its settings, and saves; an edit the API refuses is
// shown and cannot be saved.
func TestConsolePoolSettings(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	base := "http://" + f.serve(t)
	ctx, problems := consoletest.Browser(t)
	shots := consoletest.Screenshots(t)
	admin := f.keys[auth.Admin]
	var pool apiv1.Pool
	f.mustDo(t, http.StatusCreated, "POST", "/v1/pools", admin, map[string]any{"name": "studio", "max_replicas": 4}, &pool)
	job := f.submitJob(t, admin, map[string]any{"input": map[string]any{"url": "https://x.example/a.mp4"}, "workflow": "mp4-720p", "pool": pool.ID})
	_, err := f.db.Exec(t.Context(), `UPDATE jobs SET status = 'running', started_at = now() WHERE id = $1`, job.ID)
	require.NoError(t, err)
	_, err = f.store.UpsertWorker(t.Context(), store.Worker{ID: "studio-1", PoolID: pool.ID, Lane: "live"})
	require.NoError(t, err)
	maxReplicas := func() int {
		var p apiv1.Pool
		f.mustDo(t, http.StatusOK, "GET", "/v1/pools/"+pool.ID, admin, nil, &p)
		return p.MaxReplicas
	}

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/console"),
		consoletest.SignIn(admin),
		consoletest.Route("#/pools"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-pool="`+pool.ID+`"]`))))
	assert.Equal(t, "1", consoletest.TextOf(ctx, t, `tr[data-pool="`+pool.ID+`"] .pool-in-flight`))
	assert.Equal(t, "1", consoletest.TextOf(ctx, t, `tr[data-pool="`+pool.ID+`"] .pool-workers`))

	require.NoError(t, chromedp.Do(ctx,
		consoletest.Route("#/pools/"+pool.ID),
		chromedp.WaitVisible(chromedp.ID("pool-settings"))))
	assert.Contains(t, consoletest.TextOf(ctx, t, "#pool-summary"), "running: 1 · workers: 1")
	saveDisabled := func() bool {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("pool-save").disabled`))
		require.NoError(t, err)
		return v
	}
	assert.True(t, saveDisabled(), "nothing is saved before it is previewed")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Clear(chromedp.ID("pool-max_replicas")),
		chromedp.SendKeys(chromedp.ID("pool-max_replicas"), "13"),
		chromedp.Click(chromedp.ID("pool-preview")),
		chromedp.WaitVisible(chromedp.CSS("#preview-plan li"))))
	assert.Contains(t, consoletest.TextOf(ctx, t, "#preview-plan mark.changed"), `"maxReplicaCount": 13`, "the changed line is marked")
	assert.NotContains(t, consoletest.TextOf(ctx, t, "#preview-plan mark.changed"), `"kind"`, "unchanged lines are not marked")
	assert.Equal(t, 4, maxReplicas(), "a preview saves nothing")
	assert.False(t, saveDisabled())
	consoletest.Shoot(t, ctx, shots, "pool-settings")
	// An edit after the preview needs a new one before Save.
	require.NoError(t, chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("pool-target_queue_length"), "0")))
	assert.True(t, saveDisabled(), "the form no longer shows what was previewed")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("pool-target_queue_length"), "1"),
		chromedp.Click(chromedp.ID("pool-preview"))))
	waitTrue(ctx, t, `!document.getElementById("pool-save").disabled`)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.ID("pool-save"))))
	require.Eventually(t, func() bool { return maxReplicas() == 13 }, 10*time.Second, 100*time.Millisecond)
	waitTrue(ctx, t, `document.getElementById("plan").innerText.includes('"maxReplicaCount": 13')`)

	// Refused: min above max. The API's words are shown; Save stays off.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.ID("pool-min_replicas")),
		chromedp.Clear(chromedp.ID("pool-min_replicas")),
		chromedp.SendKeys(chromedp.ID("pool-min_replicas"), "20"),
		chromedp.Click(chromedp.ID("pool-preview"))))
	waitTrue(ctx, t, `document.querySelector("#pool-settings .error").innerText.length > 0`)
	assert.Contains(t, consoletest.TextOf(ctx, t, "#pool-settings .error"), "min_replicas")
	assert.True(t, saveDisabled())
	assert.Equal(t, 13, maxReplicas())

	// A Viewer reads the pool but gets no editor.
	require.NoError(t, chromedp.Do(ctx,
		consoletest.SignOut(),
		consoletest.SignIn(f.keys[auth.Viewer]),
		consoletest.Route("#/pools/"+pool.ID),
		chromedp.WaitVisible(chromedp.ID("plan"))))
	assert.Zero(t, mustCount(ctx, t, "#pool-settings"))
	assert.Empty(t, problems(), "the pages broke their Content-Security-Policy or threw")
}

// TestConsoleUsageChart: the usage page draws one bar per day of the
// range, taller for the busier day, failed jobs in their own colour, and
// follows a new range.
func TestConsoleUsageChart(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	base := "http://" + f.serve(t)
	ctx, problems := consoletest.Browser(t)
	shots := consoletest.Screenshots(t)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	busy, quiet := today.AddDate(0, 0, -2), today
	for i, r := range []struct {
		day     time.Time
		status  string
		seconds float64
	}{{busy, "completed", 60}, {busy, "completed", 60}, {busy, "failed", 30}, {quiet, "completed", 40}} {
		_, err := f.db.Exec(t.Context(), `INSERT INTO usage_records (org_id, job_id, day, status, encode_seconds, output_minutes) VALUES ($1, $2, $3, $4, $5, 1)`,
			f.orgA.ID, uuid.New(), r.day, r.status, r.seconds)
		require.NoError(t, err, "record %d", i)
	}
	height := func(day time.Time, class string) float64 {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[float64](fmt.Sprintf(
			`Number((document.querySelector('#usage-chart rect.%s[data-day="%s"]') || {getAttribute: () => "-1"}).getAttribute("height"))`, class, day.Format(time.DateOnly))))
		require.NoError(t, err)
		return v
	}

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/console"),
		consoletest.SignIn(f.keys[auth.Viewer]),
		consoletest.Route("#/usage"),
		chromedp.WaitVisible(chromedp.ID("usage-chart"))))
	var usage apiv1.Usage
	f.mustDo(t, http.StatusOK, "GET", "/v1/organization/usage", f.keys[auth.Viewer], nil, &usage)
	from, err := time.Parse(time.DateOnly, usage.From)
	require.NoError(t, err)
	to, err := time.Parse(time.DateOnly, usage.To)
	require.NoError(t, err)
	assert.Equal(t, int(to.Sub(from).Hours()/24)+1, mustCount(ctx, t, "#usage-chart rect.bar"), "one bar per day of the range, empty days too")
	assert.Greater(t, height(busy, "bar"), height(quiet, "bar"), "150 s is taller than 40 s")
	assert.Greater(t, height(quiet, "bar"), 0.0)
	assert.Zero(t, height(today.AddDate(0, 0, -1), "bar"), "a day without usage has an empty bar")
	consoletest.Shoot(t, ctx, shots, "usage-chart")

	require.NoError(t, chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("usage-measure"), "jobs"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("usage-measure").dispatchEvent(new Event("change"))`)))
	waitTrue(ctx, t, `document.querySelectorAll("#usage-chart rect.bar-failed").length === 1`)
	assert.Greater(t, height(busy, "bar"), height(busy, "bar-failed"), "3 jobs, 1 failed")

	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("usage-from"), busy.Format(time.DateOnly)),
		chromedp.SetValue(chromedp.ID("usage-to"), today.Format(time.DateOnly)),
		chromedp.Click(chromedp.CSS("#usage-range button[type=submit]"))))
	waitTrue(ctx, t, `document.querySelectorAll("#usage-chart rect.bar").length === 3`)
	assert.Empty(t, problems(), "the pages broke their Content-Security-Policy or threw")
}

// TestConsoleManagesWebhooksAndMembers: an Editor creates a webhook (its
// secret shown once), disables and deletes it; an Admin adds a member,
// changes their role, issues them a key that works and revokes it, and
// removes them. The API agrees at every step.
func TestConsoleManagesWebhooksAndMembers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	base := "http://" + f.serve(t)
	ctx, problems := consoletest.Browser(t)
	shots := consoletest.Screenshots(t)
	editor, admin := f.keys[auth.Editor], f.keys[auth.Admin]
	hooks := func() []apiv1.Webhook {
		var p apiv1.Page[apiv1.Webhook]
		f.mustDo(t, http.StatusOK, "GET", "/v1/webhooks", editor, nil, &p)
		return p.Items
	}

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/console"),
		consoletest.SignIn(editor),
		consoletest.Route("#/webhooks"),
		chromedp.WaitVisible(chromedp.ID("create-hook")),
		chromedp.SendKeys(chromedp.ID("hook-url"), "https://hooks.example.com/console"),
		chromedp.Click(chromedp.ID("new-hook-job-queued")), // add job.queued to the default two
		chromedp.Click(chromedp.CSS("#create-hook button[type=submit]"))))
	waitTrue(ctx, t, `!!document.querySelector("#hook-secret code") || document.querySelector("#create-hook .error").innerText !== ""`)
	require.Empty(t, consoletest.TextOf(ctx, t, "#create-hook .error"))
	all := hooks()
	require.Len(t, all, 1)
	assert.Equal(t, "https://hooks.example.com/console", all[0].URL)
	assert.ElementsMatch(t, []string{"job.queued", "job.completed", "job.failed"}, all[0].Events)
	assert.NotEmpty(t, consoletest.TextOf(ctx, t, "#hook-secret code"), "the signing secret is shown once")
	card := `[data-webhook="` + all[0].ID + `"]`
	consoletest.Shoot(t, ctx, shots, "webhook-created")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(card+` button[data-action="disable"]`))))
	require.Eventually(t, func() bool { h := hooks(); return len(h) == 1 && !h[0].Enabled }, 10*time.Second, 100*time.Millisecond)
	waitTrue(ctx, t, fmt.Sprintf(`!!document.querySelector('%s button[data-action="enable"]')`, card))
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(card+` button[data-action="delete"]`))))
	waitTrue(ctx, t, fmt.Sprintf(`document.querySelector('%s button[data-action="delete"]').innerText === "Delete: sure?"`, card))
	assert.Len(t, hooks(), 1, "one press only asks")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(card+` button[data-action="delete"]`))))
	require.Eventually(t, func() bool { return len(hooks()) == 0 }, 10*time.Second, 100*time.Millisecond)

	// Members: an Editor reads them without controls; an Admin manages.
	require.NoError(t, chromedp.Do(ctx, consoletest.Route("#/members"), chromedp.WaitVisible(chromedp.ID("members"))))
	assert.Zero(t, mustCount(ctx, t, "#add-member"))
	require.NoError(t, chromedp.Do(ctx,
		consoletest.SignOut(),
		consoletest.SignIn(admin),
		consoletest.Route("#/members"),
		chromedp.WaitVisible(chromedp.ID("add-member")),
		chromedp.SendKeys(chromedp.ID("member-email"), "new.hire@a.example"),
		chromedp.SendKeys(chromedp.ID("member-name"), "New Hire"),
		chromedp.Click(chromedp.CSS("#add-member button[type=submit]"))))
	member := func() *apiv1.Member {
		var p apiv1.Page[apiv1.Member]
		f.mustDo(t, http.StatusOK, "GET", "/v1/members?limit=200", admin, nil, &p)
		for _, m := range p.Items {
			if m.Email == "new.hire@a.example" {
				return &m
			}
		}
		return nil
	}
	require.Eventually(t, func() bool { return member() != nil }, 10*time.Second, 100*time.Millisecond)
	m := member()
	assert.Equal(t, "viewer", m.Role)
	row := `tr[data-member="` + m.UserID + `"]`
	waitTrue(ctx, t, fmt.Sprintf(`!!document.querySelector('%s')`, row))
	require.NoError(t, chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("role-"+m.UserID), "editor"),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.getElementById("role-%s").dispatchEvent(new Event("change"))`, m.UserID))))
	require.Eventually(t, func() bool { return member().Role == "editor" }, 10*time.Second, 100*time.Millisecond)

	waitTrue(ctx, t, fmt.Sprintf(`!!document.querySelector('%s details')`, row))
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(row+" details summary")),
		chromedp.WaitVisible(chromedp.ID("member-"+m.UserID+"-key-name")),
		chromedp.SendKeys(chromedp.ID("member-"+m.UserID+"-key-name"), "laptop"),
		chromedp.Click(chromedp.CSS(row+" .issue-key button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS(row+" .member-secret code"))))
	key := consoletest.TextOf(ctx, t, row+" .member-secret code")
	require.True(t, strings.HasPrefix(key, "mfk_"), "the member's key is shown once: %q", key)
	f.mustDo(t, http.StatusOK, "GET", "/v1/jobs", key, nil, nil)
	consoletest.Shoot(t, ctx, shots, "members")
	waitTrue(ctx, t, fmt.Sprintf(`!!document.querySelector('%s details tbody button')`, row))
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(row+" details tbody button"))))
	require.Eventually(t, func() bool { return f.do(t, "GET", "/v1/jobs", key, nil).Status == http.StatusUnauthorized }, 10*time.Second, 100*time.Millisecond)

	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(row+` button[data-action="remove"]`))))
	waitTrue(ctx, t, fmt.Sprintf(`document.querySelector('%s button[data-action="remove"]').innerText === "Remove: sure?"`, row))
	assert.NotNil(t, member(), "one press only asks")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(row+` button[data-action="remove"]`))))
	require.Eventually(t, func() bool { return member() == nil }, 10*time.Second, 100*time.Millisecond)
	assert.Empty(t, problems(), "the pages broke their Content-Security-Policy or threw")
}
