package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/mpegflow/mpegflow/apiserver/apiservertest"
	"github.com/mpegflow/mpegflow/client"
	"github.com/mpegflow/mpegflow/internal/store"
)

func TestPoolsCommands(t *testing.T) {
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	useServer(t, srv.URL, srv.OwnerKey)
	set := store.DefaultPoolSettings()
	set.Name = "GPU encoders"
	own, err := srv.Store.CreatePool(t.Context(), srv.OrgID, set)
	require.NoError(t, err)

	var page client.Page[client.Pool]
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "pools", "list", "-o", "json").OK(t)), &page))
	var ids []string
	for _, p := range page.Items {
		ids = append(ids, p.ID)
	}
	assert.ElementsMatch(t, []string{"default", own.ID}, ids)

	lines := strings.Split(strings.TrimSpace(runCLI(t, nil, "pools", "get", own.ID).OK(t)), "\n")
	require.Len(t, lines, 2)
	assert.Equal(t, []string{"ID", "NAME", "STATUS", "ACCELERATOR", "MIN", "MAX", "TARGET-QUEUE", "POLL", "BACKFILL-MAX", "QUEUED"}, strings.Fields(lines[0]))
	assert.Contains(t, lines[1], "live=0 backfill=0")

	var p client.Pool
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "pools", "pause", own.ID, "-o", "json").OK(t)), &p))
	assert.Equal(t, "paused", p.Status)
	assert.Equal(t, "manual", deref(p.PausedBy))
	lines = strings.Split(strings.TrimSpace(runCLI(t, nil, "pools", "get", own.ID).OK(t)), "\n")
	assert.Contains(t, lines[1], "paused (manual)", "the table says who paused the pool")
	require.NoError(t, yaml.Unmarshal([]byte(runCLI(t, nil, "pools", "resume", own.ID, "-o", "yaml").OK(t)), &p))
	assert.Equal(t, "active", p.Status)

	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "pools", "update", own.ID, "--max-replicas", "7", "--min-replicas", "1",
		"--polling-interval", "5", "--target-queue-length", "2", "--backfill-max-replicas", "3", "-o", "json").OK(t)), &p))
	assert.Equal(t, []int{1, 7, 5, 2, 3}, []int{p.MinReplicas, p.MaxReplicas, p.PollingIntervalSeconds, p.TargetQueueLength, p.BackfillMaxReplicas})
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "pools", "update", own.ID, "--max-replicas", "9", "-o", "json").OK(t)), &p))
	assert.Equal(t, []int{1, 9, 3}, []int{p.MinReplicas, p.MaxReplicas, p.BackfillMaxReplicas}, "only the given flag changes")
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "pools", "update", own.ID, "--jobs-per-pod", "4", "-o", "json").OK(t)), &p))
	assert.Equal(t, []int{4, 9}, []int{p.JobsPerPod, p.MaxReplicas})

	for name, tc := range map[string]struct {
		args []string
		code int
		want string
	}{
		"nothing to update": {[]string{"pools", "update", own.ID}, 2,
			"mpegflow: nothing to update: give at least one of --min-replicas, --max-replicas, --polling-interval, --target-queue-length, --backfill-max-replicas"},
		"invalid setting": {[]string{"pools", "update", own.ID, "--max-replicas", "0"}, 1,
			"mpegflow: update pool " + own.ID + ": 422 validation: max_replicas: must be between 1 and 1000 (pause a pool to stop it; KEDA rejects 0)"},
		"shared pool":  {[]string{"pools", "pause", "default"}, 1, "mpegflow: pause pool default: 404 not-found: pool not found"},
		"no such pool": {[]string{"pools", "get", "nope"}, 1, "mpegflow: get pool nope: 404 not-found: pool not found"},
		"not a number": {[]string{"pools", "update", own.ID, "--max-replicas", "many"}, 2, `invalid argument "many" for "--max-replicas"`},
	} {
		t.Run(name, func(t *testing.T) {
			line := runCLI(t, nil, tc.args...).Failed(t, tc.code)
			if strings.HasPrefix(tc.want, "mpegflow: ") {
				assert.True(t, strings.HasPrefix(line, tc.want), "got  %s\nwant %s", line, tc.want)
			} else {
				assert.Contains(t, line, tc.want)
			}
		})
	}

	// A viewer reads pools but cannot change them.
	useServer(t, srv.URL, srv.ViewerKey)
	runCLI(t, nil, "pools", "list").OK(t)
	assert.Equal(t, "mpegflow: resume pool "+own.ID+": 403 forbidden: your role (viewer) does not allow pool:manage",
		runCLI(t, nil, "pools", "resume", own.ID).Failed(t, 1))
}
