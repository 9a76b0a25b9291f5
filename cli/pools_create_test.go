package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/apiserver/apiservertest"
	"github.com/mpegflow/mpegflow/client"
)

func TestPoolsCreateDelete(t *testing.T) {
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	useServer(t, srv.URL, srv.OwnerKey)

	var p client.Pool
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "pools", "create", "--name", "GPU encoders", "--accelerator", "nvidia", "--max-replicas", "4", "-o", "json").OK(t)), &p))
	assert.Equal(t, "GPU encoders", p.Name)
	assert.Equal(t, "nvidia", p.Accelerator)
	assert.Equal(t, 4, p.MaxReplicas)
	assert.Equal(t, "active", p.Status)
	c := apiClient(t, srv)
	got, err := c.GetPool(t.Context(), p.ID)
	require.NoError(t, err)
	assert.Equal(t, p.Name, got.Name)

	assert.Equal(t, "mpegflow: create needs --name", runCLI(t, nil, "pools", "create").Failed(t, 2))
	assert.True(t, strings.HasPrefix(runCLI(t, nil, "pools", "create", "--name", "x", "--accelerator", "tpu").Failed(t, 1),
		"mpegflow: create pool: 422 validation: accelerator: must be cpu or nvidia"))

	assert.Equal(t, "pool "+p.ID+" deleted\n", runCLI(t, nil, "pools", "delete", p.ID).OK(t))
	assert.True(t, strings.HasPrefix(runCLI(t, nil, "pools", "get", p.ID).Failed(t, 1), "mpegflow: get pool "+p.ID+": 404 not-found"))
	line := runCLI(t, nil, "pools", "delete", "default").Failed(t, 1)
	assert.True(t, strings.HasPrefix(line, "mpegflow: delete pool default: 409 conflict: the shared default pool cannot be deleted"), line)

	useServer(t, srv.URL, srv.ViewerKey)
	assert.Contains(t, runCLI(t, nil, "pools", "create", "--name", "mine").Failed(t, 1), "403 forbidden")
}

func TestBatchesList(t *testing.T) {
	srv := apiservertest.New(t, apiservertest.Options{NoWebSocket: true})
	useServer(t, srv.URL, srv.OwnerKey)
	c := apiClient(t, srv)
	root := "orgs/" + srv.OrgID.String() + "/archive/"
	require.NoError(t, srv.Objects.Put(t.Context(), root+"a.mxf", strings.NewReader("x")))
	var ids []string
	for _, key := range []string{"first", "second"} {
		b, _, err := c.CreateBatch(t.Context(), client.BatchRequest{Key: key, Workflow: "mp4-720p",
			Source: client.BatchSource{Prefix: "s3://" + srv.Objects.Bucket() + "/" + root}})
		require.NoError(t, err)
		ids = append(ids, b.ID)
	}

	var page client.Page[client.BatchSummary]
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "batches", "list", "-o", "json").OK(t)), &page))
	require.Len(t, page.Items, 2)
	assert.Equal(t, []string{ids[1], ids[0]}, []string{page.Items[0].ID, page.Items[1].ID}, "newest first")
	assert.Equal(t, "mp4-720p", page.Items[0].Workflow)

	r := runCLI(t, nil, "batches", "list", "--limit", "1")
	rows := fields(r.OK(t))
	assert.Equal(t, []string{"ID", "EXPANSION", "POOL", "WORKFLOW", "INPUTS", "EXPANDED", "AGE", "ERROR"}, rows[0])
	require.Len(t, rows, 2)
	assert.Equal(t, ids[1], rows[1][0])
	assert.Contains(t, r.Stderr, "more: add --cursor ")
	require.NoError(t, json.Unmarshal([]byte(runCLI(t, nil, "batches", "list", "--limit", "1", "--all", "-o", "json").OK(t)), &page))
	assert.Len(t, page.Items, 2)
}
