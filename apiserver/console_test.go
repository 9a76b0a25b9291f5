package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/console/consoletest"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/events"
)

// TestConsoleInABrowser drives the console in chromium against the real
// API server, Postgres and Redis: sign in with a key (which the browser
// does not keep), submit a job, watch it progress and complete live over
// the WebSocket, read its page; a forged request without the CSRF token is
// refused, another organization's job is "not found", and a Viewer's
// console has no submit or cancel controls. Any CSP violation fails it.
func TestConsoleInABrowser(t *testing.T) {
	t.Parallel()
	f := newFixture(t) // its event hub runs, as serve's does
	base := "http://" + f.serve(t)
	ctx, problems := consoletest.Browser(t)
	shots := consoletest.Screenshots(t)

	id := func(s string) chromedp.ID { return chromedp.ID(s) }
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	eval := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		require.NoError(t, err, expr)
		return v
	}

	// Sign in as an editor.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/console"),
		chromedp.WaitVisible(id("api-key"))))
	consoletest.Shoot(t, ctx, shots, "signin")
	require.NoError(t, chromedp.Do(ctx,
		consoletest.SignIn(f.keys[auth.Editor]),
		chromedp.WaitVisible(id("submit"))))
	stored := eval(`JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie + location.href`)
	assert.NotContains(t, stored, f.keys[auth.Editor], "the key is in no storage, script-readable cookie or URL")
	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
	require.NoError(t, err)
	var session *network.Cookie
	for _, c := range cookies.Cookies {
		assert.NotContains(t, c.Value, f.keys[auth.Editor])
		if c.Name == sessionCookie {
			session = c
		}
	}
	require.NotNil(t, session, "a session cookie was set")
	assert.True(t, session.HTTPOnly, "no script reads the session")
	assert.Equal(t, network.CookieSameSiteStrict, session.SameSite)

	// Submit a job through the form: it appears in the list.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(id("submit-url"), "https://media.example.com/in.mp4"),
		chromedp.Clear(id("submit-workflow")),
		chromedp.SendKeys(id("submit-workflow"), "mp4-720p"),
		chromedp.Click(css("#submit button[type=submit]")),
		chromedp.WaitVisible(css("#jobs tbody tr"))))
	attr, err := chromedp.Run(ctx, chromedp.AttributeValue(css("#jobs tbody tr"), "data-job"))
	require.NoError(t, err)
	jobID := attr.Value
	jid, err := uuid.Parse(jobID)
	require.NoError(t, err)
	_, err = f.store.GetJob(context.Background(), f.orgA.ID, jid)
	require.NoError(t, err, "the job is the signed-in organization's")

	// Progress and completion arrive over the WebSocket, no reload.
	advance := func(status string, progress float64, event string) {
		_, err := f.db.Exec(context.Background(), `UPDATE jobs SET status = $2, progress = $3,
			started_at = COALESCE(started_at, now()), finished_at = CASE WHEN $2 = 'completed' THEN now() END WHERE id = $1`, jid, status, progress)
		require.NoError(t, err)
		require.NoError(t, f.srv.bus.Emit(context.Background(), events.Event{Type: event, OrgID: &f.orgA.ID, JobID: &jid, PoolID: "default"}))
	}
	progressOf := fmt.Sprintf(`String(document.querySelector('tr[data-job="%s"] progress').value)`, jid)
	waitValue := func(expr, want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		got := ""
		for time.Now().Before(deadline) {
			if got = eval(expr); got == want {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s is %v, want %v", expr, got, want)
	}
	advance("running", 0.5, "job.progress")
	waitValue(progressOf, "0.5")
	advance("completed", 1, "job.completed")
	waitValue(progressOf, "1")
	consoletest.Shoot(t, ctx, shots, "jobs")

	// The job's page.
	require.NoError(t, chromedp.Do(ctx,
		consoletest.Route("#/jobs/"+jobID),
		chromedp.WaitVisible(css("#job-status .status-completed"))))
	assert.Equal(t, "completed", consoletest.TextOf(ctx, t, "#job-status"))
	waitValue(`String(document.getElementById("job-events").textContent.includes("job.queued"))`, "true")
	consoletest.Shoot(t, ctx, shots, "job")

	// A request the console did not make (no CSRF token) is refused, from
	// the page and from outside it with the session cookie.
	forged, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch("/v1/jobs", {method: "POST", headers: {"Content-Type": "application/json"},
		body: JSON.stringify({input: {url: "https://media.example.com/x.mp4"}, workflow: "mp4-720p"})}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	assert.Equal(t, http.StatusForbidden, forged)
	req, err := http.NewRequest(http.MethodPost, base+"/v1/jobs/"+jobID+"/cancel", nil)
	require.NoError(t, err)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: session.Value})
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	// Another organization's job is not found.
	other := f.submitJob(t, f.keyB, urlJob())
	require.NoError(t, chromedp.Do(ctx,
		consoletest.Route("#/jobs/"+other.ID),
		chromedp.WaitVisible(id("not-found"))))
	assert.Equal(t, "Job not found", consoletest.TextOf(ctx, t, "h1"))

	// Signed out, the session no longer works.
	require.NoError(t, chromedp.Do(ctx,
		consoletest.Route("#/jobs"),
		chromedp.WaitVisible(id("jobs")),
		consoletest.SignOut()))
	req, err = http.NewRequest(http.MethodGet, base+"/v1/jobs", nil)
	require.NoError(t, err)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: session.Value})
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// A Viewer sees no submit form and no cancel button.
	queued := f.submitJob(t, f.keys[auth.Owner], urlJob())
	require.NoError(t, chromedp.Do(ctx,
		consoletest.SignIn(f.keys[auth.Viewer])))
	assert.Equal(t, "0", eval(`String(document.querySelectorAll("#submit").length)`), "a Viewer has no submit form")
	require.NoError(t, chromedp.Do(ctx,
		consoletest.Route("#/jobs/"+queued.ID),
		chromedp.WaitVisible(id("job-status"))))
	assert.Equal(t, "0", eval(`String(document.querySelectorAll("#cancel").length)`), "a Viewer has no cancel button")

	assert.Empty(t, problems(), "the pages broke their Content-Security-Policy or threw")
	t.Logf("screenshots in %s", shots)
}

// TestConsolePools: an Admin pauses and resumes the organization's
// dedicated pool from the pools page (the API agrees each time) and reads
// what the operator would apply for it; a Viewer sees the pools without
// the controls.
func TestConsolePools(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	base := "http://" + f.serve(t)
	ctx, problems := consoletest.Browser(t)
	shots := consoletest.Screenshots(t)
	var pool struct {
		ID string `json:"id"`
	}
	f.mustDo(t, http.StatusCreated, "POST", "/v1/pools", f.keys[auth.Admin], map[string]any{"name": "news"}, &pool)
	button := chromedp.CSS(`tr[data-pool="` + pool.ID + `"] button`)
	statusCell := chromedp.CSS(`tr[data-pool="` + pool.ID + `"] .pool-status`)
	poolStatus := func() string {
		var p struct {
			Status string `json:"status"`
		}
		f.mustDo(t, http.StatusOK, "GET", "/v1/pools/"+pool.ID, f.keys[auth.Admin], nil, &p)
		return p.Status
	}
	waitText := func(sel chromedp.CSS, prefix string) {
		t.Helper()
		require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(sel)))
		consoletest.WaitText(ctx, t, string(sel), prefix, 10*time.Second)
	}

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/console"),
		consoletest.SignIn(f.keys[auth.Admin]),
		consoletest.Route("#/pools")))
	waitText(statusCell, "active")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(button)))
	waitText(statusCell, "paused")
	assert.Equal(t, "paused", poolStatus())
	consoletest.Shoot(t, ctx, shots, "pools")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(button)))
	waitText(statusCell, "active")
	assert.Equal(t, "active", poolStatus())

	require.NoError(t, chromedp.Do(ctx,
		consoletest.Route("#/pools/"+pool.ID),
		chromedp.WaitVisible(chromedp.CSS("#plan li"))))
	assert.Contains(t, consoletest.TextOf(ctx, t, "#plan"), "ScaledJob", "the plan preview names what the operator applies")
	consoletest.Shoot(t, ctx, shots, "pool-plan")

	require.NoError(t, chromedp.Do(ctx,
		consoletest.SignOut(),
		consoletest.SignIn(f.keys[auth.Viewer]),
		consoletest.Route("#/pools")))
	waitText(statusCell, "active")
	buttons, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#pools button").length`))
	require.NoError(t, err)
	assert.Zero(t, buttons, "a Viewer cannot pause or resume")
	assert.Empty(t, problems(), "the pages broke their Content-Security-Policy or threw")
}

// TestConsolePlaysOutputs: a completed job's HLS ladder plays in the job's
// page with the browser's own player, read through the API on the
// console's origin (video.currentTime advances and the frame is the
// rendition's size), and its poster shows.
func TestConsolePlaysOutputs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	base := "http://" + f.serve(t)
	ctx, problems := consoletest.Browser(t)
	shots := consoletest.Screenshots(t)

	// A real 6 s HLS rendition (fMP4, 320x180, with audio) and a poster,
	// stored where the coordinator stores a job's outputs.
	job := f.submitJob(t, f.keys[auth.Owner], urlJob())
	dir := t.TempDir()
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=6",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=6", "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-c:a", "aac",
		"-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
		"-master_pl_name", "master.m3u8", "-hls_segment_filename", filepath.Join(dir, "seg_%03d.m4s"), filepath.Join(dir, "index.m3u8")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=1:duration=1", "-frames:v", "1", filepath.Join(dir, "poster.jpg")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var records []map[string]any
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		key := "orgs/" + f.orgA.ID.String() + "/jobs/" + job.ID + "/outputs/" + e.Name()
		require.NoError(t, f.objects.Put(context.Background(), key, strings.NewReader(string(data))))
		kind, ctype := "video", "video/iso.segment"
		switch filepath.Ext(e.Name()) {
		case ".m3u8":
			kind, ctype = "playlist", "application/vnd.apple.mpegurl"
		case ".jpg":
			kind, ctype = "poster", "image/jpeg"
		case ".mp4":
			ctype = "video/mp4"
		}
		records = append(records, map[string]any{"name": e.Name(), "kind": kind, "size_bytes": len(data), "content_type": ctype, "key": key})
	}
	_, err = f.db.Exec(context.Background(), `UPDATE jobs SET status = 'completed', progress = 1, started_at = now(), finished_at = now(), outputs = $2 WHERE id = $1`,
		job.ID, records)
	require.NoError(t, err)

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/console"),
		consoletest.SignIn(f.keys[auth.Viewer]),
		consoletest.Route("#/jobs/"+job.ID),
		chromedp.WaitVisible(chromedp.ID("video"))))
	src, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("video").currentSrc`))
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(src, "/v1/jobs/"+job.ID+"/files/master.m3u8"), "the HLS master playlist plays, from the API: %s", src)
	_, err = chromedp.Run(ctx, chromedp.Evaluate[*string](`document.getElementById("video").play().then(() => null)`, chromedp.EvalAwaitPromise))
	require.NoError(t, err, "the browser plays the output")
	deadline := time.Now().Add(30 * time.Second)
	var at float64
	for time.Now().Before(deadline) {
		at, err = chromedp.Run(ctx, chromedp.Evaluate[float64](`document.getElementById("video").currentTime`))
		require.NoError(t, err)
		if at > 1 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	assert.Greater(t, at, 1.0, "playback advances")
	width, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.getElementById("video").videoWidth`))
	require.NoError(t, err)
	assert.Equal(t, 320, width, "the frame is the rendition's")
	posterOK, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const v = document.getElementById("video"); return v.poster.endsWith("/files/poster.jpg"); })()`))
	require.NoError(t, err)
	assert.True(t, posterOK)
	consoletest.Shoot(t, ctx, shots, "player")

	// A name that is not among the job's outputs is not served.
	req, err := http.NewRequest(http.MethodGet, base+"/v1/jobs/"+job.ID+"/files/..%2F..%2Fsource", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+f.keys[auth.Viewer])
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Empty(t, problems(), "the pages broke their Content-Security-Policy or threw")
}

// TestConsoleOrganizationPages: an Editor reads the webhook delivery log
// and redelivers one, creates an API key (shown once) and revokes it, and
// reads the members, usage and batches pages; a Viewer has no webhooks
// link.
func TestConsoleOrganizationPages(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	base := "http://" + f.serve(t)
	ctx, problems := consoletest.Browser(t)
	shots := consoletest.Screenshots(t)
	editor := f.keys[auth.Editor]
	var hook struct {
		ID string `json:"id"`
	}
	f.mustDo(t, http.StatusCreated, "POST", "/v1/webhooks", editor, map[string]any{"url": "https://hooks.example.com/a", "events": []string{"job.queued"}}, &hook)
	f.submitJob(t, editor, urlJob())
	text := func(sel string) string {
		t.Helper()
		return consoletest.TextOf(ctx, t, sel)
	}

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/console"),
		consoletest.SignIn(editor),
		consoletest.Route("#/webhooks"),
		chromedp.WaitVisible(chromedp.CSS(`[data-webhook="`+hook.ID+`"] [data-delivery]`))))
	assert.Equal(t, "job.queued", text(`[data-delivery] td`))
	consoletest.Shoot(t, ctx, shots, "webhooks")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-delivery] button`))))
	require.Eventually(t, func() bool { return text(`[data-delivery] button`) == "Queued" }, 10*time.Second, 100*time.Millisecond)

	require.NoError(t, chromedp.Do(ctx,
		consoletest.Route("#/keys"),
		chromedp.WaitVisible(chromedp.ID("key-name")),
		chromedp.SendKeys(chromedp.ID("key-name"), "from the console"),
		chromedp.Click(chromedp.CSS("#create-key button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#new-key code"))))
	newKey := text("#new-key code")
	assert.True(t, strings.HasPrefix(newKey, "mfk_"), "the new key is shown once: %q", newKey)
	f.mustDo(t, http.StatusOK, "GET", "/v1/jobs", newKey, nil, nil)
	consoletest.Shoot(t, ctx, shots, "keys")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.Search(`//tr[td[1][text()="from the console"]]//button`))))
	state := `(() => { for (const tr of document.querySelectorAll("#keys tbody tr")) { if (tr.cells[0].innerText === "from the console") return tr.cells[2].innerText; } return ""; })()`
	require.Eventually(t, func() bool {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](state))
		return err == nil && v == "revoked"
	}, 10*time.Second, 100*time.Millisecond)
	assert.Equal(t, http.StatusUnauthorized, f.do(t, "GET", "/v1/jobs", newKey, nil).Status, "revoked from the console")

	require.NoError(t, chromedp.Do(ctx, consoletest.Route("#/members"), chromedp.WaitVisible(chromedp.ID("members"))))
	assert.Contains(t, text("#members"), "owner@a.example")
	require.NoError(t, chromedp.Do(ctx, consoletest.Route("#/usage"), chromedp.WaitVisible(chromedp.ID("usage"))))
	consoletest.Shoot(t, ctx, shots, "usage")
	require.NoError(t, chromedp.Do(ctx, consoletest.Route("#/batches"), chromedp.WaitVisible(chromedp.ID("batches"))))
	consoletest.Shoot(t, ctx, shots, "batches")

	require.NoError(t, chromedp.Do(ctx,
		consoletest.SignOut(),
		consoletest.SignIn(f.keys[auth.Viewer])))
	hidden, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('a[href="#/webhooks"]').hidden`))
	require.NoError(t, err)
	assert.True(t, hidden, "a Viewer has no webhooks link")
	assert.Empty(t, problems(), "the pages broke their Content-Security-Policy or threw")
}
