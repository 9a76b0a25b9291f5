package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/mpegflow/mpegflow/apiserver/apiservertest"
	"github.com/mpegflow/mpegflow/client"
	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// workflowDoc is a workflow document whose spec is a built-in's.
func workflowDoc(t *testing.T, name string) []byte {
	t.Helper()
	spec, ok := encodespec.Builtin("mp4-720p")
	require.True(t, ok)
	b, err := json.Marshal(map[string]any{"name": name, "description": "720p for the web", "spec": spec})
	require.NoError(t, err)
	return b
}

func TestWorkflowsCommands(t *testing.T) {
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	useServer(t, srv.URL, srv.OwnerKey)
	dir := t.TempDir()
	file := filepath.Join(dir, "web.json")
	require.NoError(t, os.WriteFile(file, workflowDoc(t, "web"), 0o600))

	var w client.Workflow
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "workflows", "create", "-f", file, "-o", "json").OK(t)), &w))
	assert.Equal(t, "web", w.Name)
	assert.NotEmpty(t, w.Spec)

	out := runCLI(t, strings.NewReader(string(workflowDoc(t, "archive"))), "workflows", "create", "-f", "-").OK(t)
	assert.Contains(t, out, "archive")

	lines := strings.Split(strings.TrimSpace(runCLI(t, nil, "workflows", "list").OK(t)), "\n")
	require.Len(t, lines, 3)
	assert.Equal(t, []string{"ID", "NAME", "DESCRIPTION", "AGE"}, strings.Fields(lines[0]))
	assert.Contains(t, lines[1], "archive")

	var got client.Workflow
	require.NoError(t, yaml.Unmarshal([]byte(runCLI(t, nil, "workflows", "get", w.ID, "-o", "yaml").OK(t)), &got))
	assert.Equal(t, w.ID, got.ID)
	assert.JSONEq(t, string(w.Spec), string(got.Spec))
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "workflows", "get", "web", "-o", "json").OK(t)), &got))
	assert.Equal(t, w.ID, got.ID)

	var page client.Page[client.Workflow]
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "workflows", "list", "--limit", "1", "--all", "-o", "json").OK(t)), &page))
	assert.Len(t, page.Items, 2)
}

func TestWorkflowsBadInput(t *testing.T) {
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	useServer(t, srv.URL, srv.OwnerKey)
	for name, tc := range map[string]struct {
		stdin string
		args  []string
		code  int
		want  string
	}{
		"no file":      {args: []string{"workflows", "create"}, code: 2, want: "mpegflow: give the workflow file: -f FILE (or -f - for stdin)"},
		"missing file": {args: []string{"workflows", "create", "-f", "/nonexistent.json"}, code: 1, want: "mpegflow: workflow file /nonexistent.json does not exist"},
		"empty stdin":  {args: []string{"workflows", "create", "-f", "-"}, code: 1, want: "mpegflow: workflow file stdin is not valid JSON: unexpected end of JSON input"},
		"invalid spec": {stdin: `{"name": "x", "spec": {"renditions": [{"codec": "mpeg1"}]}}`, args: []string{"workflows", "create", "-f", "-"}, code: 1,
			want: "mpegflow: create workflow: 422 validation: spec.renditions[0]."},
		"no name": {stdin: `{"spec": {}}`, args: []string{"workflows", "create", "-f", "-"}, code: 1, want: "name: must be 1 to 100 characters"},
		"unknown": {args: []string{"workflows", "get", "nope"}, code: 1, want: `mpegflow: unknown workflow "nope"`},
	} {
		t.Run(name, func(t *testing.T) {
			line := runCLI(t, strings.NewReader(tc.stdin), tc.args...).Failed(t, tc.code)
			if strings.HasPrefix(tc.want, "mpegflow: ") {
				assert.True(t, strings.HasPrefix(line, tc.want), "got  %s\nwant %s", line, tc.want)
			} else {
				assert.Contains(t, line, tc.want)
			}
		})
	}
}
