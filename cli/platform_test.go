package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/apiserver/apiservertest"
	"github.com/mpegflow/mpegflow/client"
	"github.com/mpegflow/mpegflow/internal/auth"
)

func TestPlatformPolicyCommands(t *testing.T) {
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	useServer(t, srv.URL, srv.OwnerKey)
	assert.True(t, strings.HasPrefix(runCLI(t, nil, "platform", "policy", "get").Failed(t, 1),
		"mpegflow: read the platform policy: 403 forbidden"), "an organization's owner may not read it")

	platform, err := srv.Store.BootstrapOrg(t.Context(), "Platform", "root@platform.example", auth.SuperAdmin)
	require.NoError(t, err)
	useServer(t, srv.URL, platform.Key)
	got := runCLI(t, nil, "platform", "policy", "get", "-o", "json").OK(t)
	var d client.PlatformPolicyDocument
	require.NoError(t, json.Unmarshal([]byte(got), &d))
	assert.Equal(t, apiv1.UnrestrictedPlatformPolicy(), d.PlatformPolicy, "apiservertest's seed")

	// What get prints, set takes back, edited.
	d.Plans = apiv1.DefaultPlatformPolicy().Plans
	edited, err := json.Marshal(d)
	require.NoError(t, err)
	rows := fields(runCLI(t, strings.NewReader(string(edited)), "platform", "policy", "set", "-f", "-").OK(t))
	assert.Equal(t, []string{"PLAN", "DEDICATED", "POOLS", "REPLICAS/POOL", "REPLICAS/ORG", "PREWARMED/POOL", "PREWARMED/ORG", "GPUS", "NODE-SELECTORS"}, rows[0])
	require.Len(t, rows, 5)
	assert.Equal(t, []string{"free", "false", "0"}, rows[1][:3])
	assert.Equal(t, []string{"enterprise", "true", "20", "200", "500", "50", "100", "32"}, rows[4][:8])

	// The server validates; the CLI refuses what is not a policy at all.
	out := runCLI(t, strings.NewReader(`{"plans":{"free":{}}}`), "platform", "policy", "set", "-f", "-").Failed(t, 1)
	assert.Contains(t, out, "422 validation")
	assert.Contains(t, out, "plans.pro")
	assert.Contains(t, runCLI(t, strings.NewReader(`{"plan":{}}`), "platform", "policy", "set", "-f", "-").Failed(t, 2), "not a platform policy document")
	assert.Equal(t, "mpegflow: -f FILE is required (- for standard input)", runCLI(t, nil, "platform", "policy", "set").Failed(t, 2))
}
