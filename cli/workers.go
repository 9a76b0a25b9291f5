package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mpegflow/mpegflow/client"
)

func workersCmd() *cobra.Command {
	var api apiFlags
	cmd := apiGroup("workers", "See your pools' encode workers (admins); drain or evict one (platform admins)", &api)
	list := &cobra.Command{
		Use:   "list",
		Short: "List the workers of your pools, newest first",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := api.client()
			if err != nil {
				return err
			}
			ws, err := c.ListWorkers(cmd.Context())
			if err != nil {
				return fmt.Errorf("list workers: %w", err)
			}
			return renderPage(cmd, client.Page[client.Worker]{Items: ws}, func() *table { return workersTable(ws) })
		},
	}
	outputFlag(list)
	cmd.AddCommand(list,
		actionCmd("drain ID", "Let a worker finish its job and claim no more", "worker", nil, api.client, (*client.Client).DrainWorker, workersTable),
		actionCmd("evict ID", "Stop a worker now and requeue its job", "worker", nil, api.client, (*client.Client).EvictWorker, workersTable))
	return cmd
}

func workersTable(ws []client.Worker) *table {
	t := &table{header: []string{"ID", "POOL", "LANE", "NODE", "STATUS", "JOB", "HEARTBEAT"}}
	now := time.Now()
	for _, w := range ws {
		job := ""
		if w.CurrentJobID != nil {
			job = *w.CurrentJobID
		}
		t.add(w.ID, w.PoolID, w.Lane, w.Node, w.Status, job, age(w.LastHeartbeatAt, now))
	}
	return t
}
