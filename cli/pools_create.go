package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/client"
)

func poolsCreateCmd(api *apiFlags) *cobra.Command {
	var name, accelerator string
	values := make([]int, len(poolSettingFlags))
	cmd := &cobra.Command{
		Use:     "create --name NAME",
		Short:   "Create a dedicated pool (settings not given take the server's defaults)",
		Example: "  mpegflow pools create --name \"GPU encoders\" --accelerator nvidia --max-replicas 4",
		Args:    args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return usagef("create needs --name")
			}
			settings := map[string]any{"name": name}
			if accelerator != "" {
				settings["accelerator"] = accelerator
			}
			for i, s := range poolSettingFlags {
				if cmd.Flags().Changed(s.flag) {
					settings[s.field] = values[i]
				}
			}
			c, err := api.client()
			if err != nil {
				return err
			}
			p, err := c.CreatePool(cmd.Context(), settings)
			if err != nil {
				return fmt.Errorf("create pool: %w", err)
			}
			return render(cmd.OutOrStdout(), outputFormat(cmd), p, func() *table { return poolsTable([]client.Pool{p}) })
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "what the pool is called")
	cmd.Flags().StringVar(&accelerator, "accelerator", "", "cpu or nvidia (default cpu)")
	for i, s := range poolSettingFlags {
		cmd.Flags().IntVar(&values[i], s.flag, 0, s.usage)
	}
	_ = cmd.RegisterFlagCompletionFunc("accelerator", cobra.FixedCompletions(apiv1.Accelerators, cobra.ShellCompDirectiveNoFileComp))
	outputFlag(cmd)
	return cmd
}

func poolsDeleteCmd(api *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:               "delete ID",
		Short:             "Delete a dedicated pool that has no unfinished jobs",
		Args:              args(1, 1),
		ValidArgsFunction: completePools(api),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := api.client()
			if err != nil {
				return err
			}
			if err := c.DeletePool(cmd.Context(), a[0]); err != nil {
				return fmt.Errorf("delete pool %s: %w", a[0], err)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "pool %s deleted\n", a[0])
			return err
		},
	}
}
