package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/mpegflow/mpegflow/client"
	"github.com/mpegflow/mpegflow/internal/encodespec"
)

func workflowsCmd() *cobra.Command {
	var api apiFlags
	cmd := apiGroup("workflows", "List, show and create your organization's reusable encode workflows", &api)
	cmd.AddCommand(workflowsListCmd(&api), workflowsGetCmd(&api), workflowsCreateCmd(&api))
	return cmd
}

func workflowsTable(ws []client.Workflow) *table {
	t := &table{header: []string{"ID", "NAME", "DESCRIPTION", "AGE"}}
	now := time.Now()
	for _, w := range ws {
		t.add(w.ID, w.Name, w.Description, age(w.CreatedAt, now))
	}
	return t
}

func workflowsListCmd(api *apiFlags) *cobra.Command {
	return pagedListCmd(api, "List your workflows, newest first (the built-ins are "+strings.Join(encodespec.BuiltinNames(), ", ")+")", "workflows",
		func(c *client.Client, ctx context.Context, limit int, cursor string) (client.Page[client.Workflow], error) {
			return c.ListWorkflows(ctx, limit, cursor)
		}, workflowsTable)
}

func workflowsGetCmd(api *apiFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get ID|NAME",
		Short: "Show a workflow and its encode spec (-o json or yaml shows the spec)",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := api.client()
			if err != nil {
				return err
			}
			var w client.Workflow
			if _, perr := uuid.Parse(a[0]); perr == nil {
				w, err = c.GetWorkflow(cmd.Context(), a[0])
				if err != nil {
					err = fmt.Errorf("get workflow %s: %w", a[0], err)
				}
			} else {
				w, err = workflowByName(cmd.Context(), c, a[0])
			}
			if err != nil {
				return err
			}
			return render(cmd.OutOrStdout(), outputFormat(cmd), w, func() *table { return workflowsTable([]client.Workflow{w}) })
		},
	}
	outputFlag(cmd)
	return cmd
}

func workflowsCreateCmd(api *apiFlags) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "create -f FILE",
		Short: "Create a workflow from a JSON file {name, description, spec} ('-f -' reads stdin)",
		Example: `  mpegflow workflows create -f ladder.json
  echo '{"name":"web","spec":{...}}' | mpegflow workflows create -f -`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usagef("give the workflow file: -f FILE (or -f - for stdin)")
			}
			doc, err := readJSONFile(cmd, file, "workflow file")
			if err != nil {
				return err
			}
			c, err := api.client()
			if err != nil {
				return err
			}
			w, err := c.CreateWorkflow(cmd.Context(), doc)
			if err != nil {
				return fmt.Errorf("create workflow: %w", err)
			}
			return render(cmd.OutOrStdout(), outputFormat(cmd), w, func() *table { return workflowsTable([]client.Workflow{w}) })
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "JSON file with name, description and spec ('-' reads stdin)")
	outputFlag(cmd)
	return cmd
}
