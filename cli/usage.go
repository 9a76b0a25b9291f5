package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func usageCmd() *cobra.Command {
	var (
		api      apiFlags
		from, to string
	)
	cmd := &cobra.Command{
		Use:     "usage [--from YYYY-MM-DD] [--to YYYY-MM-DD]",
		Short:   "Usage per UTC day: jobs by final status, encode and GPU seconds, output minutes",
		Example: "  mpegflow usage --from 2026-11-01 --to 2026-11-30 -o json",
		Args:    args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			for name, v := range map[string]string{"--from": from, "--to": to} {
				if _, err := time.Parse(time.DateOnly, v); v != "" && err != nil {
					return usagef("%s must be a date such as 2026-01-31, not %q", name, v)
				}
			}
			c, err := api.client()
			if err != nil {
				return err
			}
			u, err := c.GetUsage(cmd.Context(), from, to)
			if err != nil {
				return fmt.Errorf("read usage: %w", err)
			}
			return render(cmd.OutOrStdout(), outputFormat(cmd), u, func() *table {
				t := &table{header: []string{"DAY", "COMPLETED", "FAILED", "CANCELLED", "ENCODE-SECONDS", "GPU-SECONDS", "OUTPUT-MINUTES"}}
				for _, d := range u.Days {
					t.add(d.Day.Format(time.DateOnly), fmt.Sprint(d.JobsCompleted), fmt.Sprint(d.JobsFailed), fmt.Sprint(d.JobsCancelled),
						fmt.Sprintf("%.1f", d.EncodeSeconds), fmt.Sprintf("%.1f", d.GPUSeconds), fmt.Sprintf("%.1f", d.OutputMinutes))
				}
				return t
			})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "first UTC day (default 30 days ago)")
	cmd.Flags().StringVar(&to, "to", "", "last UTC day (default today)")
	outputFlag(cmd)
	addAPIFlags(cmd, &api)
	return cmd
}
