package apiserver

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
)

// badText is what TestTextIsText puts into a JSON string field: each is text
// Postgres cannot store or encoding/json would silently change, with what
// the field's error must say.
var badText = []struct{ name, value, detail string }{
	{"raw NUL byte", "\"a\x00b\"", "NUL character"},
	{"escaped NUL", `"a\u0000b"`, "NUL character"},
	{"lone high surrogate", `"a\ud800b"`, "surrogate"},
	{"lone low surrogate", `"\udc00"`, "surrogate"},
	{"invalid UTF-8 byte", "\"a\xffb\"", "not valid UTF-8"},
	{"truncated UTF-8 sequence", "\"a\xe2\x82\"", "not valid UTF-8"},
}

// textRoute is one route that takes a JSON body with a string field: path
// is the route's pattern, id fills its :id, body has %s where the field's
// value goes, field is the path a 422 must name; key, when set, is the
// API key to call with (default: an Owner's; "-" for none).
type textRoute struct {
	method, path, id, body, field string
	key                           string
}

// textRoutes lists, for every route with a body, a field that reaches the
// database as text (or the encode spec), with the ids of real resources so
// the handler gets as far as decoding the body.
func textRoutes(t *testing.T, f *fixture) []textRoute {
	t.Helper()
	owner := f.keys[auth.Owner]
	var wf apiv1.Workflow
	f.mustDo(t, http.StatusCreated, "POST", "/v1/workflows", owner, map[string]any{"name": "w", "spec": map[string]any{
		"packaging": "mp4", "renditions": []any{map[string]any{"codec": "h264", "height": 720, "bitrate_kbps": 1000}}}}, &wf)
	var hook apiv1.WebhookCreated
	f.mustDo(t, http.StatusCreated, "POST", "/v1/webhooks", owner, map[string]any{"url": "https://hooks.example.com/x", "events": []string{"job.completed"}}, &hook)
	var member apiv1.Member
	f.mustDo(t, http.StatusCreated, "POST", "/v1/members", owner, map[string]any{"email": "text@a.example", "role": "viewer"}, &member)
	var pool apiv1.Pool
	f.mustDo(t, http.StatusCreated, "POST", "/v1/pools", owner, map[string]any{"name": "text"}, &pool)
	upload := f.multipartAsset(t, owner, testUploads.MultipartThreshold+1)
	url := `"input":{"url":"https://media.example.com/in.mp4"}`
	spec := func(name string) string {
		return `{"packaging":"mp4","renditions":[{"codec":"h264","height":720,"bitrate_kbps":1000},` +
			`{"codec":"h264","height":480,"bitrate_kbps":800},{"name":` + name + `,"codec":"h264","height":360,"bitrate_kbps":600}]}`
	}
	return []textRoute{
		{"POST", "/v1/jobs", "", `{` + url + `,"workflow":"mp4-720p","metadata":{"title":%s}}`, "metadata.title", ""},
		{"POST", "/v1/jobs", "", `{` + url + `,"spec":` + spec("%s") + `}`, "spec.renditions[2].name", ""},
		{"POST", "/v1/jobs", "", `{"input":{"url":%s},"workflow":"mp4-720p"}`, "input.url", ""},
		{"POST", "/v1/batches", "", `{"workflow":"mp4-720p","source":{"prefix":"s3://b/in/","include":["*.mp4",%s]}}`, "source.include[1]", ""},
		{"POST", "/v1/workflows", "", `{"name":%s,"spec":` + spec(`"low"`) + `}`, "name", ""},
		{"POST", "/v1/workflows", "", `{"name":"w2","spec":` + spec("%s") + `}`, "spec.renditions[2].name", ""},
		{"PATCH", "/v1/workflows/:id", wf.ID, `{"description":%s}`, "description", ""},
		{"POST", "/v1/jobs/:id/clearkey", uuid.NewString(), `{"kids":["AAAAAAAAAAAAAAAAAAAAAA",%s]}`, "kids[1]", ""},
		{"POST", "/v1/assets", "", `{"filename":%s}`, "filename", ""},
		{"POST", "/v1/assets/:id/upload/parts", upload.ID, `{"part_numbers":[1,%s]}`, "part_numbers[1]", ""},
		{"POST", "/v1/assets/:id/upload/complete", upload.ID, `{"parts":[{"part_number":1,"etag":%s}]}`, "parts[0].etag", ""},
		{"POST", "/v1/webhooks", "", `{"url":"https://hooks.example.com/y","events":["job.completed"],"description":%s}`, "description", ""},
		{"PATCH", "/v1/webhooks/:id", hook.ID, `{"events":["job.failed",%s]}`, "events[1]", ""},
		{"PATCH", "/v1/organization", "", `{"name":%s}`, "name", ""},
		{"PATCH", "/v1/organization/billing", "", `{"billing_name":%s}`, "billing_name", ""},
		{"POST", "/v1/members", "", `{"email":"x@a.example","role":"viewer","name":%s}`, "name", ""},
		{"PATCH", "/v1/members/:id", member.UserID, `{"role":%s}`, "role", ""},
		{"POST", "/v1/api-keys", "", `{"name":%s}`, "name", ""},
		{"POST", "/v1/pools", "", `{"name":"p2","node_selector":{"zone":%s}}`, "node_selector.zone", ""},
		{"PATCH", "/v1/pools/:id", pool.ID, `{"cron_windows":[{"timezone":"UTC","start":"0 8 * * *","end":"0 18 * * *","desired_replicas":1},{"timezone":%s}]}`, "cron_windows[1].timezone", ""},
		{"POST", "/v1/pools/:id/plan", pool.ID, `{"name":%s}`, "name", ""},
		{"POST", "/v1/members/:id/api-keys", member.UserID, `{"name":%s}`, "name", ""},
		{"POST", "/v1/members/:id/invitations", member.UserID, `{"role":%s}`, "role", ""},
		{"POST", "/v1/invitations/redeem", "", `{"token":"mfi_x","name":%s}`, "name", "-"},
		{"POST", "/v1/admin/organizations/:id/storage-grants", f.orgA.ID.String(), `{"bucket":%s}`, "bucket", f.keys[auth.SuperAdmin]},
		{"PATCH", "/v1/admin/organizations/:id", f.orgA.ID.String(), `{"share_weight":%s}`, "share_weight", f.keys[auth.SuperAdmin]},
		{"PUT", "/v1/platform/policy", "", `{"plans":{"free":{"node_selectors":[%s]}}}`, "plans.free.node_selectors[0]", f.keys[auth.SuperAdmin]},
	}
}

// TestTextIsText: on every route that takes a body, text Postgres cannot
// store (NUL), text encoding/json would silently replace (lone surrogates,
// invalid UTF-8) and a key given twice are refused with 422 naming the
// field, never a 5xx and never stored.
func TestTextIsText(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := f.keys[auth.Owner]
	routes := textRoutes(t, f)

	covered := map[string]bool{}
	for _, r := range routes {
		covered[r.method+" "+r.path] = true
	}
	for _, r := range f.srv.Routes() {
		if r.Body != nil {
			assert.True(t, covered[r.Method+" "+r.Path], "route %s %s takes a body but has no row in textRoutes", r.Method, r.Path)
		}
	}

	for _, r := range routes {
		last := r.field[strings.LastIndexAny(r.field, ".]")+1:]
		inputs := badText
		if !strings.HasSuffix(r.field, "]") { // an object member: also give its key twice
			inputs = append(inputs[:len(inputs):len(inputs)], struct{ name, value, detail string }{"duplicate key", `"v","` + last + `":"v"`, "more than once"})
		}
		for _, in := range inputs {
			t.Run(r.method+" "+r.path+" "+r.field+" "+in.name, func(t *testing.T) {
				body := strings.Replace(r.body, "%s", in.value, 1)
				k := cmp.Or(r.key, key)
				if k == "-" {
					k = ""
				}
				resp := f.raw(t, r.method, strings.Replace(r.path, ":id", r.id, 1), k, []byte(body), nil)
				require.Equal(t, http.StatusUnprocessableEntity, resp.Status, "%s %s\n%q\n%s", r.method, r.path, body, resp.Body)
				var details []string
				for _, fe := range resp.problem(t).Errors {
					if fe.Field == r.field {
						details = append(details, fe.Detail)
					}
				}
				require.NotEmpty(t, details, "no error names %s: %s", r.field, resp.Body)
				assert.Contains(t, strings.Join(details, "; "), in.detail)
			})
		}
	}
}

// TestTextInQueryParameters: query parameters, which Fiber unescapes, are
// held to the same rule as body fields: 422 naming the parameter.
func TestTextInQueryParameters(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := f.keys[auth.Owner]
	cases := []struct{ name, path, field string }{
		{"NUL in pool filter", "/v1/jobs?pool=a%00b", "pool"},
		{"invalid UTF-8 in pool filter", "/v1/jobs?pool=a%FFb", "pool"},
		{"truncated UTF-8 in pool filter", "/v1/jobs?pool=%E2%82", "pool"},
		{"NUL in status filter", "/v1/jobs?status=queued%00", "status"},
		{"NUL in delivery status", "/v1/webhooks/00000000-0000-0000-0000-000000000000/deliveries?status=%00", "status"},
		{"NUL in cursor", "/v1/workflows?cursor=%00", "cursor"},
		{"NUL in usage dates", "/v1/organization/usage?from=2026-01-01%00", "from"},
		{"NUL in a parameter's name", "/v1/jobs?po%00ol=x", "po\uFFFDol"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.raw(t, "GET", tc.path, key, nil, nil)
			require.Equal(t, http.StatusUnprocessableEntity, resp.Status, "%s", resp.Body)
			assert.Contains(t, resp.fields(t), tc.field)
		})
	}
}

// TestTextInPathParameters: Fiber passes path parameters on as the client
// wrote them, and fasthttp lets raw bytes above 0x7f through, so invalid
// UTF-8 reaches the pool and worker ids that Postgres compares as text.
// app.Test escapes such bytes, so this test writes requests on a socket.
func TestTextInPathParameters(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	addr := f.serve(t)
	cases := []struct{ name, method, path string }{
		{"pool", "GET", "/v1/pools/a\xffb"},
		{"pool plan", "GET", "/v1/pools/\xe2\x82/plan"},
		{"pool patch", "PATCH", "/v1/pools/a\xffb"},
		{"pool pause", "POST", "/v1/pools/a\xffb/pause"},
		{"pool delete", "DELETE", "/v1/pools/a\xffb"},
		{"worker drain", "POST", "/v1/workers/w\xff/drain"},
		{"worker evict", "POST", "/v1/workers/w\xc3/evict"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			defer conn.Close()
			_, err = fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer %s\r\n"+
				"Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}", tc.method, tc.path, f.keys[auth.SuperAdmin])
			require.NoError(t, err)
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			r := response{Status: resp.StatusCode, Header: resp.Header, Body: body}
			require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", body)
			assert.Equal(t, []string{"id"}, r.fields(t))
		})
	}
}

// TestUnstorableTextIsNotAServerError: should text Postgres cannot store get
// past the API's checks, the error the database really returns answers 422
// without quoting it, not 500.
func TestUnstorableTextIsNotAServerError(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for name, query := range map[string]struct {
		sql  string
		args []any
	}{
		"NUL in text":           {"SELECT $1::text", []any{"a\x00b"}},
		"invalid UTF-8 in text": {"SELECT $1::text", []any{"a\xffb"}},
		"NUL in jsonb":          {"SELECT $1::jsonb", []any{`{"a":"\u0000"}`}},
		"past a size limit":     {"SELECT array_fill(0, ARRAY[200000000])", nil},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := f.db.Exec(t.Context(), query.sql, query.args...)
			require.Error(t, err, "Postgres refuses it")
			app := fiber.New(fiber.Config{ErrorHandler: f.srv.errorHandler})
			app.Get("/", func(*fiber.Ctx) error { return fmt.Errorf("create thing: %w", err) })
			resp, err := app.Test(httptest.NewRequest("GET", "/", nil), -1)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, "%s", body)
			assert.Contains(t, string(body), "urn:mpegflow:problem:unstorable-input")
			for _, leak := range []string{"SQLSTATE", "UTF8", "0x00", "array", "jsonb"} {
				assert.NotContains(t, string(body), leak)
			}
		})
	}
}

// TestJSONErrorsNameTheFullPath: type errors and unknown fields deep in a
// body name their whole path, array indices included, in plain words.
func TestJSONErrorsNameTheFullPath(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := f.keys[auth.Owner]
	window := `{"timezone":"UTC","start":"0 8 * * *","end":"0 18 * * *","desired_replicas":1}`
	cases := []struct{ name, path, body, field, detail string }{
		{"fraction in an array element", "/v1/pools", `{"name":"p","cron_windows":[` + window + `,{"desired_replicas":2.5}]}`,
			"cron_windows[1].desired_replicas", "must be a whole number without fraction or exponent, got 2.5"},
		{"string for a number", "/v1/pools", `{"name":"p","cron_windows":[` + window + `,` + window + `,{"desired_replicas":"3"}]}`,
			"cron_windows[2].desired_replicas", `must be a whole number, got the string "3"`},
		{"number out of range", "/v1/jobs", `{"input":{"url":"https://media.example.com/a.mp4"},"workflow":"mp4-720p","priority":1e3}`,
			"priority", "must be a whole number without fraction or exponent, got 1e3"},
		{"too large", "/v1/jobs", `{"input":{"url":"https://media.example.com/a.mp4"},"workflow":"mp4-720p","priority":99999999999999999999}`,
			"priority", "must be a whole number from"},
		{"nested unknown field", "/v1/jobs", `{"input":{"urll":"https://media.example.com/a.mp4"},"workflow":"mp4-720p"}`,
			"input.urll", "unknown field; allowed fields here: asset_id, url"},
		{"field names are exact", "/v1/jobs", `{"input":{"url":"https://media.example.com/a.mp4"},"Workflow":"mp4-720p"}`,
			"Workflow", "unknown field"},
		{"array element of the wrong type", "/v1/batches", `{"workflow":"mp4-720p","source":{"prefix":"s3://b/in/","include":["*.mp4",7]}}`,
			"source.include[1]", "must be a string, got the number 7"},
		{"map value of the wrong type", "/v1/jobs", `{"input":{"url":"https://media.example.com/a.mp4"},"workflow":"mp4-720p","metadata":{"n":1}}`,
			"metadata.n", "must be a string, got the number 1"},
		{"spec inside a job", "/v1/jobs", `{"input":{"url":"https://media.example.com/a.mp4"},"spec":{"packaging":"mp4","renditions":[{"codec":"h264","height":720,"bitrate_kbps":1000},{"codec":"h264","height":360,"bitrate_kbps":1.5}]}}`,
			"spec.renditions[1].bitrate_kbps", "must be a whole number"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := f.raw(t, "POST", tc.path, key, []byte(tc.body), nil)
			require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r.Body)
			p := r.problem(t)
			require.NotEmpty(t, p.Errors)
			assert.Equal(t, tc.field, p.Errors[0].Field, "%s", r.Body)
			assert.Contains(t, p.Errors[0].Detail, tc.detail)
		})
	}
}
