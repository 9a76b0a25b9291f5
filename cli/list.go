package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mpegflow/mpegflow/client"
)

// actionCmd is a command that does one thing to one resource (get, cancel,
// pause, …) and shows the result as a one-row table or per -o.
func actionCmd[T any](use, short, noun string, complete cobra.CompletionFunc, client func() (*client.Client, error),
	do func(c *client.Client, ctx context.Context, id string) (T, error), tab func([]T) *table,
) *cobra.Command {
	cmd := &cobra.Command{
		Use:               use,
		Short:             short,
		Args:              args(1, 1),
		ValidArgsFunction: complete,
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			v, err := do(c, cmd.Context(), a[0])
			if err != nil {
				return fmt.Errorf("%s %s %s: %w", strings.Fields(use)[0], noun, a[0], err)
			}
			return render(cmd.OutOrStdout(), outputFormat(cmd), v, func() *table { return tab([]T{v}) })
		},
	}
	outputFlag(cmd)
	return cmd
}

// pagedListCmd is a `list` command over a keyset-paged collection: --limit,
// --cursor and --all, rendered as a table or per -o.
func pagedListCmd[T any](api *apiFlags, short, noun string,
	list func(c *client.Client, ctx context.Context, limit int, cursor string) (client.Page[T], error),
	tab func([]T) *table,
) *cobra.Command {
	var (
		limit  int
		cursor string
		all    bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: short,
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 || limit > 200 {
				return usagef("--limit must be from 1 to 200")
			}
			c, err := api.client()
			if err != nil {
				return err
			}
			page, err := collect(cmd.Context(), all, cursor, func(ctx context.Context, cur string) (client.Page[T], error) {
				return list(c, ctx, limit, cur)
			})
			if err != nil {
				return fmt.Errorf("list %s: %w", noun, err)
			}
			return renderPage(cmd, page, func() *table { return tab(page.Items) })
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, noun+" per page, 1 to 200 (default 50)")
	cmd.Flags().StringVar(&cursor, "cursor", "", "continue after a previous page (its next_cursor)")
	cmd.Flags().BoolVar(&all, "all", false, "follow every page to the end")
	outputFlag(cmd)
	return cmd
}
