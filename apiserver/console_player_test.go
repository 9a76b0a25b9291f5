package apiserver

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/console/consoletest"
	"github.com/mpegflow/mpegflow/internal/auth"
)

// TestConsolePlaysWithItsOwnPlayer: the console's Media Source Extensions
// player (console/web/player.js) plays outputs the browser does not play
// itself, read through the API on the console's origin.
//   - A DASH output as the encoder writes it (FFmpeg's DASH muxer, fMP4
//     segments, SegmentTemplate with SegmentTimeline: two video
//     representations and an audio adaptation set, 30 s) plays from a
//     blob: MediaSource URL: playback passes 1 s on the representation that
//     fits the player (320 wide, not 160), only the segments within the
//     buffer-ahead window have been fetched; the Quality menu switches to
//     the 160-wide one, and a seek near the end plays it to "ended".
//   - An fMP4 HLS output (rendition folders and an audio group, as HLS
//     packaging writes) plays through the same player when the page asks
//     for it with "?player=mse" (this chromium plays HLS natively).
//   - An MPEG-TS HLS output through that player is refused in words, with
//     no video.
func TestConsolePlaysWithItsOwnPlayer(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	base := "http://" + f.serve(t)
	ctx, problems := consoletest.Browser(t)
	shots := consoletest.Screenshots(t)
	ffmpeg := func(dir string, args ...string) {
		t.Helper()
		cmd := exec.Command("ffmpeg", append([]string{"-v", "error"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	source := func(seconds string) []string {
		return []string{"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=" + seconds,
			"-f", "lavfi", "-i", "sine=frequency=440:duration=" + seconds}
	}
	eval := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		require.NoError(t, err, expr)
		return v
	}
	waitFor := func(expr, want string, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		got := ""
		for time.Now().Before(deadline) {
			if got = eval(expr); got == want {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s is %q, want %q (player status: %q)", expr, got, want, consoletest.TextOf(ctx, t, "#player-status"))
	}
	const video = `document.getElementById("video")`
	fetched := func(name string) string {
		return `String(performance.getEntriesByType("resource").some((e) => e.name.endsWith("/` + name + `")))`
	}
	open := func(jobID, query string) {
		t.Helper()
		require.NoError(t, chromedp.Do(ctx,
			consoletest.Route("#/jobs"),
			chromedp.WaitVisible(chromedp.ID("jobs")),
			chromedp.Evaluate[chromedp.Void](`performance.clearResourceTimings()`),
			consoletest.Route("#/jobs/"+jobID+query),
			chromedp.WaitVisible(chromedp.ID("player-title"))))
	}
	playsPast := func(seconds string) {
		t.Helper()
		_, err := chromedp.Run(ctx, chromedp.Evaluate[*string](video+`.play().then(() => null)`, chromedp.EvalAwaitPromise))
		require.NoError(t, err, "the browser plays the output")
		waitFor(`String(`+video+`.currentTime > `+seconds+`)`, "true", 30*time.Second)
	}

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/console"),
		consoletest.SignIn(f.keys[auth.Viewer])))

	// DASH, with the encoder's muxer options (encoder/ffmpeg/plan.go).
	dash := t.TempDir()
	ffmpeg(dash, append(source("30"), "-filter_complex", "[0:v]split=2[a][b];[b]scale=160:90[c]",
		"-map", "[a]", "-map", "[c]", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-c:a", "aac",
		"-f", "dash", "-dash_segment_type", "mp4", "-seg_duration", "2", "-use_template", "1", "-use_timeline", "1",
		"-init_seg_name", "init_$RepresentationID$.$ext$", "-media_seg_name", "seg_$RepresentationID$_$Number%05d$.$ext$",
		"-adaptation_sets", "id=0,streams=v id=1,streams=a", "manifest.mpd")...)
	job := f.completedJobWithOutputs(t, dash)
	open(job, "")
	waitFor(`String(`+video+`.src.startsWith("blob:") && `+video+`.dataset.player)`, "dash", 10*time.Second)
	playsPast("1")
	assert.Equal(t, "320", eval(`String(`+video+`.videoWidth)`), "the representation that fits the player plays")
	assert.Equal(t, "180p (320×180)", eval(`document.querySelector("#player-quality option:checked").textContent`))
	assert.Equal(t, "true", eval(fetched("seg_0_00001.m4s")))
	assert.Equal(t, "true", eval(fetched("seg_2_00001.m4s")), "the audio plays too")
	assert.Equal(t, "false", eval(fetched("seg_0_00013.m4s")), "segments 24 s ahead wait for the playhead")
	assert.Equal(t, "false", eval(fetched("seg_1_00001.m4s")), "the 160-wide representation is not fetched")
	assert.Equal(t, "true", eval(`String(Math.abs(`+video+`.duration - 30) < 0.5)`), "the MPD's duration")
	consoletest.Shoot(t, ctx, shots, "player-dash")
	// The Quality menu switches to the 160-wide representation from the
	// next segment on.
	_, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`(() => { const m = document.getElementById("player-quality");
		m.value = [...m.options].find((o) => o.textContent.startsWith("90p")).value; m.dispatchEvent(new Event("change")); })()`))
	require.NoError(t, err)
	waitFor(`String(`+video+`.videoWidth)`, "160", 20*time.Second)
	_, err = chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](video+`.currentTime = `+video+`.duration - 1.5`))
	require.NoError(t, err)
	waitFor(`String(`+video+`.ended)`, "true", 30*time.Second)
	assert.Equal(t, "true", eval(fetched("seg_1_00015.m4s")), "the last segment, of the chosen representation, was fetched after the seek")
	assert.Equal(t, "false", eval(fetched("seg_0_00015.m4s")))
	assert.Empty(t, consoletest.TextOf(ctx, t, "#player-status"), "no error shown")

	// fMP4 HLS, the layout of HLS packaging, through the console's player.
	hls := t.TempDir()
	ffmpeg(hls, append(source("8"), "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-c:a", "aac",
		"-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
		"-var_stream_map", "v:0,agroup:audio,name:video a:0,agroup:audio,default:yes,name:audio", "-master_pl_name", "master.m3u8",
		"-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", "%v/seg_%05d.m4s", "%v/index.m3u8")...)
	job = f.completedJobWithOutputs(t, hls)
	open(job, "?player=mse")
	waitFor(`String(`+video+`.src.startsWith("blob:") && `+video+`.dataset.player)`, "hls", 10*time.Second)
	playsPast("1")
	assert.Equal(t, "320", eval(`String(`+video+`.videoWidth)`))
	assert.Equal(t, "true", eval(fetched("audio/seg_00000.m4s")), "the audio group's rendition plays")
	_, err = chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](video+`.currentTime = `+video+`.duration - 1`))
	require.NoError(t, err)
	waitFor(`String(`+video+`.ended)`, "true", 30*time.Second)
	assert.Empty(t, consoletest.TextOf(ctx, t, "#player-status"), "no error shown")

	// MPEG-TS HLS: refused in words.
	ts := t.TempDir()
	ffmpeg(ts, append(source("4"), "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
		"-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod", "-master_pl_name", "master.m3u8", "index.m3u8")...)
	job = f.completedJobWithOutputs(t, ts)
	open(job, "?player=mse")
	waitFor(`String(`+video+`.hidden)`, "true", 10*time.Second)
	assert.Contains(t, consoletest.TextOf(ctx, t, "#player-status"), "MPEG-TS")
	consoletest.Shoot(t, ctx, shots, "player-mpegts")

	assert.Empty(t, problems(), "the pages broke their Content-Security-Policy or threw")
}

// completedJobWithOutputs submits a job as orgA's owner and completes it
// with every file under dir as its outputs, stored where the coordinator
// stores them; it returns the job's id.
func (f *fixture) completedJobWithOutputs(t *testing.T, dir string) string {
	t.Helper()
	job := f.submitJob(t, f.keys[auth.Owner], urlJob())
	var records []map[string]any
	require.NoError(t, filepath.WalkDir(dir, func(file string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name, err := filepath.Rel(dir, file)
		if err != nil {
			return err
		}
		name = filepath.ToSlash(name)
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		key := "orgs/" + f.orgA.ID.String() + "/jobs/" + job.ID + "/outputs/" + name
		if err := f.objects.Put(context.Background(), key, strings.NewReader(string(data))); err != nil {
			return err
		}
		kind, ctype := "video", "video/iso.segment"
		switch filepath.Ext(name) {
		case ".m3u8":
			kind, ctype = "playlist", "application/vnd.apple.mpegurl"
		case ".mpd":
			kind, ctype = "manifest", "application/dash+xml"
		case ".ts":
			ctype = "video/mp2t"
		case ".mp4":
			ctype = "video/mp4"
		}
		records = append(records, map[string]any{"name": name, "kind": kind, "size_bytes": len(data), "content_type": ctype, "key": key})
		return nil
	}))
	_, err := f.db.Exec(context.Background(), `UPDATE jobs SET status = 'completed', progress = 1, started_at = now(), finished_at = now(), outputs = $2 WHERE id = $1`,
		job.ID, records)
	require.NoError(t, err)
	return job.ID
}
