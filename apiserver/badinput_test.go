package apiserver

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/auth"
)

// TestValidationNamesTheField: every invalid submission answers 422 naming
// the offending fields, and creates nothing.
func TestValidationNamesTheField(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := f.keys[auth.Admin]
	cases := []struct {
		name, path, body string
		fields           []string
	}{
		{"job without input", "/v1/jobs", `{"workflow":"mp4-720p"}`, []string{"input"}},
		{"job with both inputs", "/v1/jobs", `{"input":{"asset_id":"` + "00000000-0000-0000-0000-000000000001" + `","url":"https://x.example/a"},"workflow":"mp4-720p"}`, []string{"input"}},
		{"job with ftp url", "/v1/jobs", `{"input":{"url":"ftp://x.example/a.mp4"},"workflow":"mp4-720p"}`, []string{"input.url"}},
		{"job with http url", "/v1/jobs", `{"input":{"url":"http://x.example/a.mp4"},"workflow":"mp4-720p"}`, []string{"input.url"}},
		{"job with bad asset id", "/v1/jobs", `{"input":{"asset_id":"nope"},"workflow":"mp4-720p"}`, []string{"input.asset_id"}},
		{"job with unknown asset", "/v1/jobs", `{"input":{"asset_id":"00000000-0000-0000-0000-000000000001"},"workflow":"mp4-720p"}`, []string{"input.asset_id"}},
		{"job with no workflow", "/v1/jobs", `{"input":{"url":"https://x.example/a.mp4"}}`, []string{"workflow_id"}},
		{"job with unknown builtin", "/v1/jobs", `{"input":{"url":"https://x.example/a.mp4"},"workflow":"nope"}`, []string{"workflow"}},
		{"job with bad lane and priority", "/v1/jobs", `{"input":{"url":"https://x.example/a.mp4"},"workflow":"mp4-720p","lane":"fast","priority":1000,"max_attempts":99}`, []string{"lane", "priority", "max_attempts"}},
		{"job with unknown pool", "/v1/jobs", `{"input":{"url":"https://x.example/a.mp4"},"workflow":"mp4-720p","pool":"nope"}`, []string{"pool"}},
		{"job with bad spec codec", "/v1/jobs", `{"input":{"url":"https://x.example/a.mp4"},"spec":{"packaging":"mp4","renditions":[{"codec":"mpeg2","height":720,"bitrate_kbps":1000}]}}`, []string{"spec.renditions[0].codec"}},
		{"job with packaging of the wrong type", "/v1/jobs", `{"input":{"url":"https://x.example/a.mp4"},"spec":{"packaging":5,"renditions":[{"codec":"h264","height":720,"bitrate_kbps":1000}]}}`, []string{"spec.packaging"}},
		{"workflow with a packaging list of unknown formats", "/v1/workflows", `{"name":"w","spec":{"packaging":["hls","mp4"],"renditions":[{"codec":"h264","height":720,"bitrate_kbps":1000}]}}`, []string{"spec.packaging"}},
		{"job with wrong type", "/v1/jobs", `{"input":{"url":"https://x.example/a.mp4"},"workflow":"mp4-720p","priority":"high"}`, []string{"priority"}},
		{"job with unknown field", "/v1/jobs", `{"input":{"url":"https://x.example/a.mp4"},"workflow":"mp4-720p","colour":"red"}`, []string{"colour"}},
		{"job with a caption of unknown format and bad language", "/v1/jobs", `{"input":{"url":"https://x.example/a.mp4"},"workflow":"mp4-720p","captions":[{"url":"https://x.example/a.ass","language":"fr/../..","format":"ass"}]}`,
			[]string{"captions[0].format", "captions[0].language"}},
		{"job with a caption of language und and no url", "/v1/jobs", `{"input":{"url":"https://x.example/a.mp4"},"workflow":"mp4-720p","captions":[{"language":"und","format":"srt"}]}`,
			[]string{"captions[0].language", "captions[0].url"}},
		{"job with two captions of one language", "/v1/jobs", `{"input":{"url":"https://x.example/a.mp4"},"workflow":"mp4-720p","captions":[{"url":"https://x.example/a.srt","language":"fr","format":"srt"},{"url":"https://x.example/b.vtt","language":"fra","format":"vtt"}]}`,
			[]string{"captions[1].language"}},
		{"job with a caption on ftp", "/v1/jobs", `{"input":{"url":"https://x.example/a.mp4"},"workflow":"mp4-720p","captions":[{"url":"ftp://x.example/a.srt","language":"fr","format":"srt"}]}`,
			[]string{"captions[0].url"}},
		{"job with too many captions", "/v1/jobs", `{"input":{"url":"https://x.example/a.mp4"},"workflow":"mp4-720p","captions":[` + strings.Repeat(`{"url":"https://x.example/a.srt","language":"fr","format":"srt"},`, 8) + `{"url":"https://x.example/a.srt","language":"de","format":"srt"}]}`,
			[]string{"captions"}},
		{"workflow without name", "/v1/workflows", `{"spec":{"packaging":"mp4","renditions":[{"codec":"h264","height":720,"bitrate_kbps":1000}]}}`, []string{"name"}},
		{"workflow without spec", "/v1/workflows", `{"name":"x"}`, []string{"spec"}},
		{"asset with path in name", "/v1/assets", `{"filename":"../etc/passwd","size_bytes":-1}`, []string{"filename", "size_bytes"}},
		{"asset without size", "/v1/assets", `{"filename":"a.mp4"}`, []string{"size_bytes"}},
		{"webhook with bad url and event", "/v1/webhooks", `{"url":"ftp://x","events":["job.exploded"]}`, []string{"url", "events[0]"}},
		{"pool with bad settings", "/v1/pools", `{"name":"p","max_replicas":0,"accelerator":"tpu"}`, []string{"accelerator", "max_replicas"}},
		{"pool with bad cron window", "/v1/pools", `{"name":"p","cron_windows":[{"timezone":"Mars/Olympus","start":"bad","end":"0 18 * * 1-5","desired_replicas":3}]}`, []string{"cron_windows[0].timezone", "cron_windows[0].start"}},
		{"member with bad role", "/v1/members", `{"email":"x@example.com","role":"king"}`, []string{"role"}},
		{"member with bad email", "/v1/members", `{"email":"not an email","role":"viewer"}`, []string{"email"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := f.raw(t, "POST", tc.path, key, []byte(tc.body), nil)
			require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r.Body)
			got := r.fields(t)
			for _, want := range tc.fields {
				assert.Contains(t, got, want)
			}
		})
	}
	n, err := f.queue.Len(t.Context(), "default", "live")
	require.NoError(t, err)
	assert.Zero(t, n, "no invalid job reached the queue")
}

// TestUglyInputNever5xx: malformed JSON, wrong content types, oversized
// bodies and bad ids answer 4xx problem+json.
func TestUglyInputNever5xx(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := f.keys[auth.Owner]
	cases := []struct {
		name, method, path, body, contentType string
		status                                int
	}{
		{"malformed json", "POST", "/v1/jobs", `{"input":`, "", 400},
		{"not json", "POST", "/v1/jobs", `hello`, "", 400},
		{"empty body", "POST", "/v1/jobs", ``, "", 400},
		{"array body", "POST", "/v1/jobs", `[1,2]`, "", 400},
		{"trailing data", "POST", "/v1/jobs", `{"workflow":"mp4-720p"} {}`, "", 400},
		{"wrong content type", "POST", "/v1/jobs", `{}`, "text/plain", 415},
		{"json with a charset", "POST", "/v1/workflows", `null`, "application/json; charset=utf-8", 422},
		{"json in capitals", "POST", "/v1/workflows", `null`, "APPLICATION/JSON", 422},
		{"a +json type", "POST", "/v1/workflows", `null`, "application/merge-patch+json", 422},
		{"json with a suffix", "POST", "/v1/jobs", `{}`, "application/jsonx", 415},
		{"json without its type", "POST", "/v1/jobs", `{}`, "json", 415},
		{"null body", "POST", "/v1/workflows", `null`, "", 422},
		{"bad job id", "GET", "/v1/jobs/not-a-uuid", ``, "", 404},
		{"bad workflow id", "PATCH", "/v1/workflows/123", `{}`, "", 404},
		{"unknown job", "GET", "/v1/jobs/00000000-0000-0000-0000-000000000000", ``, "", 404},
		{"unknown route", "GET", "/v1/nothing", ``, "", 404},
		{"bad limit", "GET", "/v1/jobs?limit=0", ``, "", 422},
		{"bad limit type", "GET", "/v1/jobs?limit=ten", ``, "", 422},
		{"bad cursor", "GET", "/v1/jobs?cursor=%%%", ``, "", 422},
		{"forged cursor", "GET", "/v1/jobs?cursor=eyJ0IjoxfQ", ``, "", 422},
		{"bad status filter", "GET", "/v1/jobs?status=done", ``, "", 422},
		{"bad time filter", "GET", "/v1/jobs?created_after=yesterday", ``, "", 422},
		{"bad usage dates", "GET", "/v1/organization/usage?from=2026-02-01&to=2026-01-01", ``, "", 422},
		{"bad events since", "GET", "/v1/jobs/00000000-0000-0000-0000-000000000000/events?since=-1", ``, "", 422},
		{"deep nesting", "POST", "/v1/jobs", strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000), "", 422},
		{"pool id injection", "GET", "/v1/pools/' OR 1=1 --", ``, "", 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var hdr map[string]string
			if tc.contentType != "" {
				hdr = map[string]string{"Content-Type": tc.contentType}
			}
			var body []byte
			if tc.body != "" || tc.method != "GET" {
				body = []byte(tc.body)
			}
			r := f.raw(t, tc.method, strings.ReplaceAll(tc.path, " ", "%20"), key, body, hdr)
			assert.Equal(t, tc.status, r.Status, "%s", r.Body)
			p := r.problem(t)
			assert.Equal(t, tc.status, p.Status)
			assert.NotContains(t, string(r.Body), "pgx")
			assert.NotContains(t, string(r.Body), "SQLSTATE")
		})
	}
}

// TestOversizedBody goes through a real listener: fasthttp refuses the body
// while reading it, before any handler runs.
func TestOversizedBody(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	addr := f.serve(t)
	// The request announces a body past the limit. The server answers from
	// the headers alone, before reading any of it, so the test sends only
	// the headers: writing a body the server will never read would race its
	// close (a reset can swallow the answer).
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /v1/jobs HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"+
		"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", f.keys[auth.Owner], 70<<10)
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	n, err := f.queue.Len(t.Context(), "default", "live")
	require.NoError(t, err)
	assert.Zero(t, n)
}
