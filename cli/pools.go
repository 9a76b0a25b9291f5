package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/client"
)

func poolsCmd() *cobra.Command {
	var api apiFlags
	cmd := apiGroup("pools", "List, create, inspect, pause, resume, tune and delete worker pools", &api)
	cmd.AddCommand(poolsListCmd(&api), poolGetCmd(&api),
		poolActionCmd(&api, "pause", "Pause a pool: claims stop at once, queued jobs wait", (*client.Client).PausePool),
		poolActionCmd(&api, "resume", "Resume a paused pool", (*client.Client).ResumePool),
		poolsUpdateCmd(&api), poolsCreateCmd(&api), poolsDeleteCmd(&api))
	return cmd
}

func poolsTable(pools []client.Pool) *table {
	t := &table{header: []string{"ID", "NAME", "STATUS", "ACCELERATOR", "MIN", "MAX", "TARGET-QUEUE", "POLL", "BACKFILL-MAX", "QUEUED"}}
	for _, p := range pools {
		status := p.Status
		if p.PausedBy != nil {
			status += " (" + *p.PausedBy + ")" // paused (schedule), paused (manual)
		}
		t.add(p.ID, p.Name, status, p.Accelerator, fmt.Sprint(p.MinReplicas), fmt.Sprint(p.MaxReplicas),
			fmt.Sprint(p.TargetQueueLength), (time.Duration(p.PollingIntervalSeconds) * time.Second).String(),
			fmt.Sprint(p.BackfillMaxReplicas), queued(p.QueueDepth))
	}
	return t
}

// queued shows queue depth per lane: "live=3 backfill=0".
func queued(depth map[string]int64) string {
	lanes := make([]string, 0, len(depth))
	for l := range depth {
		lanes = append(lanes, l)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(lanes))) // live before backfill
	parts := make([]string, 0, len(lanes))
	for _, l := range lanes {
		parts = append(parts, fmt.Sprintf("%s=%d", l, depth[l]))
	}
	return strings.Join(parts, " ")
}

func poolsListCmd(api *apiFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the pools you can submit to",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := api.client()
			if err != nil {
				return err
			}
			ps, err := c.ListPools(cmd.Context())
			if err != nil {
				return fmt.Errorf("list pools: %w", err)
			}
			return renderPage(cmd, client.Page[client.Pool]{Items: ps}, func() *table { return poolsTable(ps) })
		},
	}
	outputFlag(cmd)
	return cmd
}

func poolGetCmd(api *apiFlags) *cobra.Command {
	return poolActionCmd(api, "get", "Show a pool and its queue depth", (*client.Client).GetPool)
}

// poolActionCmd is a verb on one pool that answers the pool (get, pause,
// resume).
func poolActionCmd(api *apiFlags, verb, short string, do func(*client.Client, context.Context, string) (client.Pool, error)) *cobra.Command {
	return actionCmd(verb+" ID", short, "pool", completePools(api), api.client, do, poolsTable)
}

// poolSettingFlags maps the update flags to the API's field names.
var poolSettingFlags = []struct{ flag, field, usage string }{
	{"min-replicas", "min_replicas", "workers kept running even with an empty queue"},
	{"max-replicas", "max_replicas", "most workers at once, 1 to 1000"},
	{"polling-interval", "polling_interval_seconds", "seconds between queue-length checks, 1 to 3600"},
	{"target-queue-length", "target_queue_length", "queued jobs per worker the scaler aims for"},
	{"backfill-max-replicas", "backfill_max_replicas", "most workers for the backfill lane, at most max-replicas"},
	{"warm-idle", "warm_idle_seconds", "seconds an idle pod of a pre-warmed pool keeps waiting for work, 20 to 3600"},
	{"jobs-per-pod", "jobs_per_pod", fmt.Sprintf("jobs one pod runs, one after another, before it exits, 1 to %d (the shared pool runs one)", apiv1.MaxJobsPerPod)},
}

func poolsUpdateCmd(api *apiFlags) *cobra.Command {
	values := make([]int, len(poolSettingFlags))
	cmd := &cobra.Command{
		Use:               "update ID",
		Short:             "Change a pool's scaling settings (only the flags given change)",
		Example:           "  mpegflow pools update default --max-replicas 8 --target-queue-length 2",
		Args:              args(1, 1),
		ValidArgsFunction: completePools(api),
		RunE: func(cmd *cobra.Command, a []string) error {
			patch := map[string]any{}
			var names []string
			for i, s := range poolSettingFlags {
				names = append(names, "--"+s.flag)
				if cmd.Flags().Changed(s.flag) {
					patch[s.field] = values[i]
				}
			}
			if len(patch) == 0 {
				return usagef("nothing to update: give at least one of %s", strings.Join(names, ", "))
			}
			c, err := api.client()
			if err != nil {
				return err
			}
			p, err := c.UpdatePool(cmd.Context(), a[0], patch)
			if err != nil {
				return fmt.Errorf("update pool %s: %w", a[0], err)
			}
			return render(cmd.OutOrStdout(), outputFormat(cmd), p, func() *table { return poolsTable([]client.Pool{p}) })
		},
	}
	for i, s := range poolSettingFlags {
		cmd.Flags().IntVar(&values[i], s.flag, 0, s.usage)
	}
	outputFlag(cmd)
	return cmd
}

// completePools offers pool ids for shell completion.
func completePools(api *apiFlags) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		c, err := api.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
		defer cancel()
		ps, err := c.ListPools(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, p := range ps {
			out = append(out, cobra.CompletionWithDesc(p.ID, p.Name))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
