package cli

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/apiserver/apiservertest"
	"github.com/mpegflow/mpegflow/client"
)

func TestMembersCommands(t *testing.T) {
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	useServer(t, srv.URL, srv.OwnerKey)

	var m client.Member
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "members", "add", "dana@client.example", "--role", "editor", "--name", "Dana", "-o", "json").OK(t)), &m))
	assert.Equal(t, "editor", m.Role)
	assert.Equal(t, "Dana", m.Name)
	id := m.UserID

	rows := fields(runCLI(t, nil, "members", "list").OK(t))
	assert.Equal(t, []string{"USER-ID", "EMAIL", "NAME", "ROLE", "AGE"}, rows[0])
	var emails []string
	for _, r := range rows[1:] {
		emails = append(emails, r[1])
	}
	assert.ElementsMatch(t, []string{"owner@client.example", "viewer@client.example", "dana@client.example"}, emails)

	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "members", "update", id, "--role", "admin", "-o", "json").OK(t)), &m))
	assert.Equal(t, "admin", m.Role)
	assert.Equal(t, "Dana", m.Name, "only the given flag changes")

	for name, tc := range map[string]struct {
		args []string
		code int
		want string
	}{
		"add without role":  {[]string{"members", "add", "eve@client.example"}, 2, "mpegflow: add needs --role (viewer, editor, admin or owner)"},
		"unknown role":      {[]string{"members", "add", "eve@client.example", "--role", "god"}, 1, "mpegflow: add member eve@client.example: 422 validation: role: "},
		"nothing to update": {[]string{"members", "update", id}, 2, "mpegflow: nothing to update: give --role, --name or both"},
		"remove no id":      {[]string{"members", "remove"}, 2, "mpegflow: usage: mpegflow members remove USER-ID"},
	} {
		t.Run(name, func(t *testing.T) {
			line := runCLI(t, nil, tc.args...).Failed(t, tc.code)
			assert.True(t, strings.HasPrefix(line, tc.want), "got  %s\nwant %s", line, tc.want)
		})
	}

	assert.Equal(t, "member "+id+" removed\n", runCLI(t, nil, "members", "remove", id).OK(t))
	assert.NotContains(t, runCLI(t, nil, "members", "list").OK(t), "dana@client.example")

	useServer(t, srv.URL, srv.ViewerKey)
	runCLI(t, nil, "members", "list").OK(t)
	assert.Contains(t, runCLI(t, nil, "members", "add", "eve@client.example", "--role", "viewer").Failed(t, 1), "403 forbidden")
}

func TestAPIKeysCommands(t *testing.T) {
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	useServer(t, srv.URL, srv.ViewerKey)

	out := runCLI(t, nil, "api-keys", "create", "laptop").OK(t)
	m := regexp.MustCompile(`api key \(shown once, store it now\): (mfk_\S+)`).FindStringSubmatch(out)
	require.Len(t, m, 2, out)
	rows := fields(out)
	assert.Equal(t, []string{"ID", "NAME", "PREFIX", "AGE", "LAST-USED", "REVOKED"}, rows[0])
	id := rows[1][0]

	// The new key works, and the list never shows a secret.
	useServer(t, srv.URL, m[1])
	var keys client.Page[client.APIKey]
	out = runCLI(t, nil, "api-keys", "list", "-o", "json").OK(t)
	assert.NotContains(t, out, m[1])
	require.NoError(t, json.Unmarshal([]byte(out), &keys))
	var names []string
	for _, k := range keys.Items {
		names = append(names, k.Name)
	}
	assert.ElementsMatch(t, []string{"test", "laptop"}, names, "the viewer's own keys only")

	useServer(t, srv.URL, srv.ViewerKey)
	var k client.APIKey
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "api-keys", "revoke", id, "-o", "json").OK(t)), &k))
	assert.NotNil(t, k.RevokedAt)
	useServer(t, srv.URL, m[1])
	assert.Contains(t, runCLI(t, nil, "api-keys", "list").Failed(t, 1), "401")
	useServer(t, srv.URL, srv.ViewerKey)
	assert.Equal(t, "mpegflow: usage: mpegflow api-keys create NAME", runCLI(t, nil, "api-keys", "create").Failed(t, 2))
}
