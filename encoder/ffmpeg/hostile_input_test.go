package ffmpeg

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHostilePlaylistInputs is the contract of issue 14's playlist fix: an
// uploaded input that is really a playlist, concat script or manifest must
// not make FFmpeg open anything but the input file itself — not a file
// beside it or elsewhere on the encode pod (another job's input, a
// credential), not a URL. Probe, the first thing the worker runs on an
// input, refuses each as an *InputError (the job fails for good, no retry
// can help); the files the input names are never opened (inotify watches
// them, see watchOpens) and the URLs it names are never fetched.
func TestHostilePlaylistInputs(t *testing.T) {
	t.Parallel()
	_, ffprobe := binaries(t)
	video, err := os.ReadFile(makeClip(t, clip{width: 160, height: 90, seconds: 2}))
	require.NoError(t, err)
	var hits atomic.Int64
	canary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write(video)
	}))
	t.Cleanup(canary.Close)
	seg := canary.URL + "/seg.mp4"
	media := func(uri string) string {
		return "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.0,\n" + uri + "\n#EXT-X-ENDLIST\n"
	}
	mpd := func(base string) string {
		return `<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT2S" minBufferTime="PT1S" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">
<Period><AdaptationSet mimeType="video/mp4"><Representation id="1" bandwidth="100000" codecs="avc1.64000c" width="160" height="90">
<BaseURL>` + base + `</BaseURL></Representation></AdaptationSet></Period></MPD>
`
	}
	concat := func(name string) string { return "ffconcat version 1.0\nfile '" + name + "'\n" }
	// Each case writes the input from where it is (the job directory) and
	// where another job's video lies (an absolute path elsewhere).
	type where struct{ dir, other string }
	rel := func(w where) string {
		r, err := filepath.Rel(w.dir, w.other)
		require.NoError(t, err)
		return r
	}
	cases := []struct {
		name    string
		content func(where) string
	}{
		{"HLS playlist naming a file by absolute path", func(w where) string { return media(w.other) }},
		{"HLS playlist naming a file: URL", func(w where) string { return media("file:" + w.other) }},
		{"HLS playlist naming a file beside the input", func(where) string { return media("neighbour.mp4") }},
		{"HLS playlist climbing out of the job directory", func(w where) string { return media(rel(w)) }},
		{"HLS playlist naming an http URL", func(where) string { return media(seg) }},
		{"HLS master playlist naming an http playlist", func(where) string {
			return "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\n" + canary.URL + "/index.m3u8\n"
		}},
		{"HLS playlist naming a data: URL", func(where) string { return media("data:video/mp4;base64,AAAA") }},
		{"ffconcat script naming a file by absolute path", func(w where) string { return concat(w.other) }},
		{"ffconcat script naming a file beside the input", func(where) string { return concat("neighbour.mp4") }},
		{"ffconcat script climbing out of the job directory", func(w where) string { return concat(rel(w)) }},
		{"ffconcat script naming an http URL", func(where) string { return concat(seg) }},
		{"DASH manifest naming an http URL", func(where) string { return mpd(seg) }},
		{"DASH manifest naming a file beside the input", func(where) string { return mpd("neighbour.mp4") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The worker's layout: the input alone in a job directory, as
			// "input", a video beside it; another job's video elsewhere.
			w := where{dir: t.TempDir(), other: filepath.Join(t.TempDir(), "other.mp4")}
			input := filepath.Join(w.dir, "input")
			neighbour := filepath.Join(w.dir, "neighbour.mp4")
			require.NoError(t, os.WriteFile(input, []byte(tc.content(w)), 0o600))
			require.NoError(t, os.WriteFile(neighbour, video, 0o600))
			require.NoError(t, os.WriteFile(w.other, video, 0o600))
			jobOpens, otherOpens := watchOpens(t, w.dir), watchOpens(t, filepath.Dir(w.other))
			before := hits.Load()

			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			info, err := Probe(ctx, ffprobe, input)
			assert.ErrorIs(t, err, ErrInput, "a playlist input is refused as the input's fault; probed as %+v", info)
			opened := otherOpens()
			for _, name := range jobOpens() {
				if name != "input" && name != "." {
					opened = append(opened, name)
				}
			}
			assert.Empty(t, opened, "FFmpeg opened files the input names (probed as %+v, %v)", info, err)
			assert.Equal(t, before, hits.Load(), "FFmpeg fetched a URL the input names")
		})
	}
	t.Logf("hostile inventory | encoder | playlist and concat inputs | %d |", len(cases))
}
