package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/stretchr/testify/require"
)

var (
	openAPIRouterOnce sync.Once
	openAPIRouter     routers.Router
	openAPIRouterErr  error
)

// checkAgainstOpenAPI fails the test when a response the server sent is not
// what the OpenAPI document says that route answers (an undocumented
// status, a body that does not match its schema, an undocumented content
// type), and when the server accepted (2xx) a request the document does not
// allow (a schema stricter than the handler, a query parameter it does not
// list). The fixture calls it for every request, so the whole apiserver
// suite proves the document describes the server. Requests to paths the
// document does not have (tests of unknown routes) are not checked.
func checkAgainstOpenAPI(t *testing.T, req *http.Request, reqBody []byte, status int, header http.Header, body []byte) {
	t.Helper()
	if err := openAPIMismatch(req, status, header, body); err != nil {
		t.Errorf("%s %s answered %d, which the OpenAPI document does not describe: %v\nbody: %.500s", req.Method, req.URL.Path, status, err, body)
	}
	if status >= 200 && status < 300 {
		if err := openAPIRequestMismatch(req, reqBody); err != nil {
			t.Errorf("%s %s was accepted (%d) but the OpenAPI document does not allow the request: %v\nrequest body: %.500s", req.Method, req.URL.String(), status, err, reqBody)
		}
	}
}

// openAPIRequestMismatch is nil when the document allows the request (or
// has no such path), else what it refuses. Credentials are not checked.
func openAPIRequestMismatch(req *http.Request, body []byte) error {
	route, params, err := findOpenAPIRoute(req)
	if err != nil || route == nil {
		return err
	}
	req = req.Clone(req.Context())
	req.Body = io.NopCloser(bytes.NewReader(body))
	return openapi3filter.ValidateRequest(req.Context(), &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	})
}

// findOpenAPIRoute finds the documented operation of a request; nil when
// the document has no such path.
func findOpenAPIRoute(req *http.Request) (*routers.Route, map[string]string, error) {
	openAPIRouterOnce.Do(func() {
		var s *Server
		raw, err := json.Marshal(s.OpenAPIDocument())
		if err != nil {
			openAPIRouterErr = err
			return
		}
		doc, err := loadOpenAPI(raw)
		if err != nil {
			openAPIRouterErr = err
			return
		}
		openAPIRouter, openAPIRouterErr = legacy.NewRouter(doc)
	})
	if openAPIRouterErr != nil {
		return nil, nil, openAPIRouterErr
	}
	route, params, err := openAPIRouter.FindRoute(req)
	var routeErr *routers.RouteError
	if errors.As(err, &routeErr) {
		return nil, nil, nil
	} else if err != nil {
		return nil, nil, fmt.Errorf("find the route: %w", err)
	}
	return route, params, nil
}

// openAPIMismatch is nil when the document describes the response (or has
// no such path), else what differs.
func openAPIMismatch(req *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := findOpenAPIRoute(req)
	if err != nil || route == nil {
		return err
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(bytes.Clone(body))
	return openapi3filter.ValidateResponse(req.Context(), in)
}

// TestOpenAPIResponseCheck proves the fixture's check can fail: responses
// the document does not describe are refused, described ones pass.
func TestOpenAPIResponseCheck(t *testing.T) {
	t.Parallel()
	problemJSON := http.Header{"Content-Type": {"application/problem+json"}}
	appJSON := http.Header{"Content-Type": {"application/json"}}
	job := `{"id":"01a234e4-d1d7-7559-ad5b-8dc82097c0fe","pool_id":"default","lane":"live","priority":0,"status":"queued",` +
		`"spec":{"packaging":"mp4","renditions":[{"name":"720p","codec":"h264","height":720,"crf":23}]},"attempts":0,"max_attempts":3,` +
		`"progress":0,"outputs":[],"usage":{},"metadata":{},"created_at":"2026-01-02T15:04:05Z","updated_at":"2026-01-02T15:04:05Z"}`
	tests := map[string]struct {
		method, path string
		status       int
		header       http.Header
		body         string
		wantErr      string
	}{
		"a job as documented":           {method: "GET", path: "/v1/jobs/x", status: 200, header: appJSON, body: job},
		"a problem as documented":       {method: "GET", path: "/v1/jobs/x", status: 404, header: problemJSON, body: `{"type":"about:blank","title":"Not Found","status":404,"detail":"job not found"}`},
		"an undocumented status":        {method: "GET", path: "/v1/jobs/x", status: 418, header: appJSON, body: job, wantErr: "status is not supported"},
		"a status outside the enum":     {method: "GET", path: "/v1/jobs/x", status: 200, header: appJSON, body: strings.Replace(job, `"queued"`, `"sleeping"`, 1), wantErr: "allowed values"},
		"a required property missing":   {method: "GET", path: "/v1/jobs/x", status: 200, header: appJSON, body: strings.Replace(job, `"lane":"live",`, "", 1), wantErr: "lane"},
		"an encode spec field mistyped": {method: "GET", path: "/v1/jobs/x", status: 200, header: appJSON, body: strings.Replace(job, `"height":720`, `"height":"720"`, 1), wantErr: "height"},
		"an undocumented content type":  {method: "GET", path: "/v1/jobs/x", status: 200, header: http.Header{"Content-Type": {"text/plain"}}, body: "hi", wantErr: "text/plain"},
		"a path the document lacks":     {method: "GET", path: "/v1/nothing", status: 404, header: problemJSON, body: `{}`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(tt.method, tt.path, nil)
			err := openAPIMismatch(req, tt.status, tt.header, []byte(tt.body))
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

// TestOpenAPIRequestCheck proves the fixture's request check can fail:
// bodies and query parameters the document does not allow are refused.
func TestOpenAPIRequestCheck(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		method, target, body string
		wantErr              string
	}{
		"a job with a partial spec":  {method: "POST", target: "/v1/jobs", body: `{"input":{"url":"https://media.example.com/a.mp4"},"spec":{"renditions":[{"height":720,"crf":23}]}}`},
		"a lane outside the enum":    {method: "POST", target: "/v1/jobs", body: `{"input":{"url":"https://media.example.com/a.mp4"},"workflow":"mp4-720p","lane":"sideways"}`, wantErr: "lane"},
		"a codec outside the enum":   {method: "POST", target: "/v1/jobs", body: `{"input":{"url":"https://media.example.com/a.mp4"},"spec":{"renditions":[{"codec":"mpeg2"}]}}`, wantErr: "codec"},
		"documented filters":         {method: "GET", target: "/v1/jobs?status=queued&limit=10&created_after=2026-01-02T15:04:05Z"},
		"a status outside the enum":  {method: "GET", target: "/v1/jobs?status=sleeping", wantErr: "status"},
		"a limit beyond the maximum": {method: "GET", target: "/v1/jobs?limit=500", wantErr: "limit"},
		"a usage day that is no day": {method: "GET", target: "/v1/organization/usage?from=yesterday", wantErr: "from"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			if tt.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			err := openAPIRequestMismatch(req, []byte(tt.body))
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.wantErr)
		})
	}
}
