package dev_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/client"
	"github.com/mpegflow/mpegflow/console/consoletest"
)

var devConsoleURL = regexp.MustCompile(`(?m)^\s+console:\s+(\S+)`)

// TestDevConsolePausedPoolHoldsAJob drives the console of a real
// `mpegflow dev` (its API server, coordinator, Postgres, Redis, S3 and local
// encoders) in Debian's chromium, signed in with the owner key dev printed.
// In one tab an Admin pauses the organization's dedicated pool from the
// pools page; in another the jobs page submits a real clip (a URL on
// loopback, which dev's egress rule allows) to that pool, and the job stays
// queued there for several executor polls: never claimed (the API agrees,
// attempts 0) and no encoder started for the pool. Resumed from the pools
// page, the job reaches completed in the other tab's list over the
// WebSocket, with no reload and no route change.
func TestDevConsolePausedPoolHoldsAJob(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatalf("ffmpeg not found on PATH (%v): the test encodes real video; install FFmpeg (scripts/deps.sh)", err)
	}
	vgw := devVersityGW(t)
	tmp := t.TempDir()
	bin := devBuild(t, tmp)
	data := filepath.Join(tmp, "data")
	env := devEnv(filepath.Join(tmp, "config", "cli.json"), vgw)

	// The input: a real clip on a loopback HTTP server (dev allows inputs
	// on 127.0.0.0/8 over http), so the console's URL form can submit it.
	media := filepath.Join(tmp, "media")
	require.NoError(t, os.Mkdir(media, 0o755))
	devClip(t, filepath.Join(media, "clip.mp4"), "640x360", 2)
	files := httptest.NewServer(http.FileServer(http.Dir(media)))
	t.Cleanup(files.Close)

	began := time.Now()
	p := devStart(t, bin, env, "--data", data, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0",
		"--metrics-addr", "127.0.0.1:0", "--poll-interval", "1s")
	banner := func(re *regexp.Regexp) string {
		t.Helper()
		m := re.FindStringSubmatch(p.output())
		require.Len(t, m, 2, "%s in the banner:\n%s", re, p.output())
		return m[1]
	}
	e := &devE2E{bin: bin, env: env, server: banner(devAPIURL), key: banner(devAPIKey)}
	consoleURL := banner(devConsoleURL)
	devWaitReady(t, e.server)
	t.Logf("mpegflow dev ready after %s", time.Since(began).Round(time.Millisecond))

	// A dedicated pool of the Local organization (dev's organization is on
	// the enterprise plan, which allows one); dev's executor serves every
	// pool. The shared default pool cannot be paused by an organization.
	var pool client.Pool
	require.Equal(t, http.StatusCreated, e.rest(t, http.MethodPost, "/v1/pools", map[string]any{"name": "console", "max_replicas": 1}, &pool), "%+v", pool)
	require.NotNil(t, pool.OrgID, "the pool is the organization's own")
	poolOf := func() client.Pool {
		t.Helper()
		var got client.Pool
		require.Equal(t, http.StatusOK, e.rest(t, http.MethodGet, "/v1/pools/"+pool.ID, nil, &got))
		return got
	}

	// Two tabs of one browser, one session: the jobs list stays open while
	// the pools page pauses and resumes.
	jobsTab, problems := consoletest.Browser(t)
	poolsTab, poolsProblems := consoletest.NewTab(t, jobsTab)
	shots := consoletest.Screenshots(t)
	poolRow := `tr[data-pool="` + pool.ID + `"]`

	require.NoError(t, chromedp.Do(jobsTab,
		chromedp.Navigate(consoleURL),
		consoletest.SignIn(e.key),
		chromedp.WaitVisible(chromedp.ID("submit"))))

	// Pause from the pools page.
	require.NoError(t, chromedp.Do(poolsTab,
		chromedp.Navigate(consoleURL+"#/pools"),
		chromedp.WaitVisible(chromedp.CSS(poolRow+" button"))))
	consoletest.WaitText(poolsTab, t, poolRow+" .pool-status", "active", 10*time.Second)
	require.NoError(t, chromedp.Do(poolsTab, chromedp.Click(chromedp.CSS(poolRow+` button[data-action="pause"]`))))
	consoletest.WaitText(poolsTab, t, poolRow+" .pool-status", "paused", 10*time.Second)
	require.Equal(t, "paused", poolOf().Status, "the API agrees with the pools page")

	// Submit the clip to the paused pool through the jobs page's form.
	require.NoError(t, chromedp.Do(jobsTab,
		chromedp.SendKeys(chromedp.ID("submit-url"), files.URL+"/clip.mp4"),
		chromedp.Clear(chromedp.ID("submit-workflow")),
		chromedp.SendKeys(chromedp.ID("submit-workflow"), "mp4-720p"),
		chromedp.Clear(chromedp.ID("submit-pool")),
		chromedp.SendKeys(chromedp.ID("submit-pool"), pool.ID),
		chromedp.Click(chromedp.CSS("#submit button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#jobs tbody tr"))))
	attr, err := chromedp.Run(jobsTab, chromedp.AttributeValue(chromedp.CSS("#jobs tbody tr"), "data-job"))
	require.NoError(t, err)
	require.True(t, attr.Exists, "the listed job has an id")
	jobID := attr.Value
	jobStatus := fmt.Sprintf(`tr[data-job="%s"] td:nth-child(2)`, jobID)
	j := e.job(t, jobID)
	require.Equal(t, pool.ID, j.PoolID, "the form submitted to the paused pool")

	// Absence of a claim: for five executor polls (--poll-interval 1s) the
	// console and the API say queued, nothing was attempted, and no
	// encoder ever started for the pool.
	deadline := time.Now().Add(5 * time.Second)
	for {
		assert.Equal(t, "queued", consoletest.TextOf(jobsTab, t, jobStatus), "the console's list")
		j := e.job(t, jobID)
		require.Equal(t, client.JobQueued, j.Status, "job %s left the queue of paused pool %s", jobID, pool.ID)
		require.Zero(t, j.Attempts, "job %s was claimed from paused pool %s", jobID, pool.ID)
		require.Empty(t, devPoolTraces(data, pool.ID), "an encode process started for paused pool %s", pool.ID)
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	consoletest.Shoot(t, jobsTab, shots, "dev-job-queued-paused")

	// The pools page, reloaded by its route, counts the waiting job; Resume.
	require.NoError(t, chromedp.Do(poolsTab, consoletest.Route("#/jobs"), chromedp.WaitVisible(chromedp.ID("jobs")),
		consoletest.Route("#/pools"), chromedp.WaitVisible(chromedp.CSS(poolRow+` button[data-action="resume"]`))))
	assert.Contains(t, consoletest.TextOf(poolsTab, t, poolRow+" td:nth-child(3)"), "live 1", "the pools page counts the waiting job")
	consoletest.Shoot(t, poolsTab, shots, "dev-pool-paused")
	// A mark the jobs tab would lose if it reloaded.
	_, err = chromedp.Run(jobsTab, chromedp.Evaluate[bool](`window.devConsoleMark = true`))
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(poolsTab, chromedp.Click(chromedp.CSS(poolRow+` button[data-action="resume"]`))))
	resumed := time.Now()
	consoletest.WaitText(poolsTab, t, poolRow+" .pool-status", "active", 10*time.Second)
	assert.Equal(t, "active", poolOf().Status, "the API agrees with the pools page")

	// The open jobs list follows the job to completed by itself.
	consoletest.WaitText(jobsTab, t, jobStatus, "completed", 90*time.Second)
	t.Logf("job %s completed in the console %s after the resume", jobID, time.Since(resumed).Round(time.Millisecond))
	page, err := chromedp.Run(jobsTab, chromedp.Evaluate[string](`(window.devConsoleMark === true) + " " + location.hash`))
	require.NoError(t, err)
	assert.Equal(t, "true #/jobs", page, "the jobs tab was neither reloaded nor routed again")
	j = e.job(t, jobID)
	assert.Equal(t, client.JobCompleted, j.Status)
	assert.Equal(t, 1, j.Attempts)
	assert.NotEmpty(t, devPoolTraces(data, pool.ID), "no trace of the encoder that ran the resumed pool's job")
	consoletest.Shoot(t, jobsTab, shots, "dev-job-completed")

	assert.Empty(t, problems(), "the jobs tab broke its Content-Security-Policy or threw")
	assert.Empty(t, poolsProblems(), "the pools tab broke its Content-Security-Policy or threw")
	devStop(t, p, data)
	t.Logf("whole run: %s; screenshots in %s", time.Since(began).Round(time.Millisecond), shots)
}
