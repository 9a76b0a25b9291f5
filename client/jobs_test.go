package client_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/apiserver/apiservertest"
	"github.com/mpegflow/mpegflow/client"
)

// TestListJobsPages walks the keyset pages and checks they hold every job
// once, newest first, and that filters reach the server.
func TestListJobsPages(t *testing.T) {
	t.Parallel()
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	c := newClient(t, srv.URL, srv.OwnerKey, client.Config{})
	var want []string
	for range 5 {
		want = append(want, urlJob(t, c).ID)
	}
	slices.Reverse(want) // newest first

	var got []string
	var sizes []int
	cursor := ""
	for {
		p, err := c.ListJobs(t.Context(), client.JobFilter{Limit: 2}, cursor)
		require.NoError(t, err)
		sizes = append(sizes, len(p.Items))
		for _, j := range p.Items {
			got = append(got, j.ID)
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	assert.Equal(t, want, got)
	assert.Equal(t, []int{2, 2, 1}, sizes)

	_, err := c.CancelJob(t.Context(), want[3])
	require.NoError(t, err)
	p, err := c.ListJobs(t.Context(), client.JobFilter{Status: client.JobCancelled}, "")
	require.NoError(t, err)
	require.Len(t, p.Items, 1)
	assert.Equal(t, want[3], p.Items[0].ID)
	assert.True(t, p.Items[0].Terminal())

	p, err = c.ListJobs(t.Context(), client.JobFilter{Pool: "nope"}, "")
	require.NoError(t, err)
	assert.Empty(t, p.Items)

	_, err = c.ListJobs(t.Context(), client.JobFilter{}, "not-a-cursor")
	assert.Equal(t, 422, client.StatusOf(err))
}

func TestIdempotentSubmission(t *testing.T) {
	t.Parallel()
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	c := newClient(t, srv.URL, srv.OwnerKey, client.Config{})
	req := client.JobRequest{Input: client.JobInput{URL: "https://media.example.com/in.mp4"}, Workflow: "hls-ladder", IdempotencyKey: "upload-8841"}
	first, err := c.CreateJob(t.Context(), req)
	require.NoError(t, err)
	again, err := c.CreateJob(t.Context(), req)
	require.NoError(t, err)
	assert.Equal(t, first.ID, again.ID)

	req.Workflow = "mp4-720p"
	_, err = c.CreateJob(t.Context(), req)
	assert.Equal(t, 409, client.StatusOf(err), "%v", err)
}

func TestPools(t *testing.T) {
	t.Parallel()
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	c := newClient(t, srv.URL, srv.OwnerKey, client.Config{})
	ps, err := c.ListPools(t.Context())
	require.NoError(t, err)
	require.NotEmpty(t, ps)
	assert.Equal(t, "default", ps[0].ID)
	assert.True(t, ps[0].Shared())

	p, err := c.GetPool(t.Context(), "default")
	require.NoError(t, err)
	assert.Contains(t, p.QueueDepth, "live")

	// Only the platform changes the shared pool.
	_, err = c.PausePool(t.Context(), "default")
	assert.True(t, client.IsNotFound(err), "%v", err)
	_, err = c.UpdatePool(t.Context(), "default", map[string]any{"max_replicas": 3})
	assert.True(t, client.IsNotFound(err), "%v", err)
}
