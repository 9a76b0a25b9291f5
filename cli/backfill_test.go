package cli

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/apiserver/apiservertest"
	"github.com/mpegflow/mpegflow/client"
)

// TestBackfillFollowsAndResumes: backfill submits a prefix, follows the
// batch through expansion and encoding to its end, and running the same
// command again resumes that batch instead of creating a second.
func TestBackfillFollowsAndResumes(t *testing.T) {
	srv := apiservertest.New(t, apiservertest.Options{})
	useServer(t, srv.URL, srv.OwnerKey)
	c := apiClient(t, srv)
	root := "orgs/" + srv.OrgID.String() + "/archive/"
	for _, k := range []string{"a.mxf", "b.mxf", "notes.txt"} {
		require.NoError(t, srv.Objects.Put(t.Context(), root+k, strings.NewReader("x")))
	}
	prefix := "s3://" + srv.Objects.Bucket() + "/" + root
	batchPoll = 20 * time.Millisecond
	args := []string{"backfill", prefix, "--workflow", "mp4-720p", "--include", "*.mxf", "--max-concurrency", "5", "-o", "json"}

	cli := background(t, args...)
	cli.waitFor(t, cli.stderr, "2 inputs")
	var jobs client.Page[client.Job]
	require.Eventually(t, func() bool {
		var err error
		jobs, err = c.ListJobs(t.Context(), client.JobFilter{}, "")
		require.NoError(t, err)
		return len(jobs.Items) == 2
	}, 10*time.Second, 20*time.Millisecond, "the server creates one job per matching object")
	id := regexp.MustCompile(`batch (\S+): 2 inputs`).FindStringSubmatch(cli.stderr.String())[1]
	require.Eventually(t, func() bool {
		b, err := c.GetBatch(t.Context(), id)
		require.NoError(t, err)
		return b.Counts.Held == 0
	}, 10*time.Second, 20*time.Millisecond, "max-concurrency 5 releases both jobs")
	// The command polls: it shows the batch running only if a poll falls
	// before both jobs end, so they end once it has.
	cli.waitFor(t, cli.stderr, "batch "+id+" running")
	for _, j := range jobs.Items {
		assert.Equal(t, "backfill", j.Lane)
		srv.Claim(t, j.ID).Complete(map[string][]byte{"out.mp4": []byte("mp4")})
	}
	r := cli.wait(t)
	var b client.Batch
	require.NoError(t, json.Unmarshal([]byte(r.OK(t)), &b), r.Stdout)
	assert.Equal(t, client.BatchCompleted, b.Status)
	assert.Equal(t, client.BatchCounts{Total: 2, Completed: 2}, b.Counts)
	assert.Contains(t, r.Stderr, "batch "+b.ID+" running")

	// The same command again: the same batch, nothing new.
	again := runCLI(t, nil, append(args, "--detach")...)
	var b2 client.Batch
	require.NoError(t, json.Unmarshal([]byte(again.OK(t)), &b2), again.Stdout)
	assert.Equal(t, b.ID, b2.ID)
	assert.Contains(t, again.Stderr, "resuming batch "+b.ID)
	jobs, err := c.ListJobs(t.Context(), client.JobFilter{}, "")
	require.NoError(t, err)
	assert.Len(t, jobs.Items, 2)

	// Bad input is one clear line, exit 1.
	line := runCLI(t, nil, "backfill", prefix+"nothing/", "--workflow", "mp4-720p").Failed(t, 1)
	assert.Contains(t, line, "source.prefix")
	line = runCLI(t, nil, "backfill", "s3://other/orgs/x/", "--workflow", "mp4-720p").Failed(t, 1)
	assert.Contains(t, line, "source.prefix")
	runCLI(t, nil, "backfill", "--workflow", "mp4-720p").Failed(t, 2)
}
