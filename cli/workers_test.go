package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/apiserver/apiservertest"
	"github.com/mpegflow/mpegflow/client"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/store"
)

func TestWorkersCommands(t *testing.T) {
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	useServer(t, srv.URL, srv.OwnerKey)
	set := store.DefaultPoolSettings()
	set.Name = "Own"
	pool, err := srv.Store.CreatePool(t.Context(), srv.OrgID, set)
	require.NoError(t, err)
	for _, id := range []string{"enc-a", "enc-b"} {
		_, err := srv.Store.UpsertWorker(t.Context(), store.Worker{ID: id, PoolID: pool.ID, Lane: "live", Node: "node-1"})
		require.NoError(t, err)
	}

	rows := fields(runCLI(t, nil, "workers", "list").OK(t))
	assert.Equal(t, []string{"ID", "POOL", "LANE", "NODE", "STATUS", "JOB", "HEARTBEAT"}, rows[0])
	require.Len(t, rows, 3)
	assert.Equal(t, []string{pool.ID, "live", "node-1", "online", "-"}, rows[1][1:6])

	// Draining and evicting are the platform's (worker:manage).
	assert.Equal(t, "mpegflow: drain worker enc-a: 403 forbidden: your role (owner) does not allow worker:manage",
		runCLI(t, nil, "workers", "drain", "enc-a").Failed(t, 1))
	platform, err := srv.Store.BootstrapOrg(t.Context(), "Platform", "root@platform.example", auth.SuperAdmin)
	require.NoError(t, err)
	useServer(t, srv.URL, platform.Key)
	var w client.Worker
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "workers", "drain", "enc-a", "-o", "json").OK(t)), &w))
	assert.Equal(t, "draining", w.Status)
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "workers", "evict", "enc-b", "-o", "json").OK(t)), &w))
	assert.Equal(t, "evicted", w.Status)
	var page client.Page[client.Worker]
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "workers", "list", "-o", "json").OK(t)), &page))
	status := map[string]string{}
	for _, w := range page.Items {
		status[w.ID] = w.Status
	}
	assert.Equal(t, map[string]string{"enc-a": "draining", "enc-b": "evicted"}, status)

	assert.True(t, strings.HasPrefix(runCLI(t, nil, "workers", "drain", "nope").Failed(t, 1), "mpegflow: drain worker nope: 404 not-found"))
	assert.Equal(t, "mpegflow: usage: mpegflow workers evict ID", runCLI(t, nil, "workers", "evict").Failed(t, 2))
}

func TestUsageCommand(t *testing.T) {
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	useServer(t, srv.URL, srv.OwnerKey)
	c := apiClient(t, srv)
	srv.Claim(t, submitURLJob(t, c).ID).Complete(map[string][]byte{"out.mp4": []byte("x")})
	srv.Claim(t, submitURLJob(t, c).ID).Fail("broken input")
	today := time.Now().UTC().Format(time.DateOnly)

	var u client.Usage
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "usage", "-o", "json").OK(t)), &u))
	assert.Equal(t, today, u.To)
	require.Len(t, u.Days, 1)
	assert.Equal(t, [3]int64{1, 1, 0}, [3]int64{u.Days[0].JobsCompleted, u.Days[0].JobsFailed, u.Days[0].JobsCancelled})

	rows := fields(runCLI(t, nil, "usage", "--from", today, "--to", today).OK(t))
	assert.Equal(t, []string{"DAY", "COMPLETED", "FAILED", "CANCELLED", "ENCODE-SECONDS", "GPU-SECONDS", "OUTPUT-MINUTES"}, rows[0])
	assert.Equal(t, []string{today, "1", "1", "0"}, rows[1][:4])
	assert.Len(t, fields(runCLI(t, nil, "usage", "--from", "2020-01-01", "--to", "2020-01-31").OK(t)), 1, "only the header")

	assert.Equal(t, `mpegflow: --from must be a date such as 2026-01-31, not "yesterday"`, runCLI(t, nil, "usage", "--from", "yesterday").Failed(t, 2))
	assert.True(t, strings.HasPrefix(runCLI(t, nil, "usage", "--from", "2026-02-01", "--to", "2026-01-01").Failed(t, 1), "mpegflow: read usage: 422 validation: to: must be on or after from"))
}
