package cli

import (
	"cmp"
	"fmt"
	"os"
	"slices"

	"github.com/spf13/cobra"

	"github.com/mpegflow/mpegflow/internal/cliconfig"
)

func configCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show and switch the CLI's contexts (server and API key pairs that login saves)",
	}
	cmd.AddCommand(getContextsCmd(), useContextCmd())
	return cmd
}

// contextView is a context as get-contexts shows it: never with its key.
type contextView struct {
	Name    string `json:"name"`
	Server  string `json:"server"`
	Current bool   `json:"current"`
}

func getContextsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get-contexts",
		Short: "List the saved contexts (API keys are not shown)",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := cliconfig.Path(os.Getenv)
			if err != nil {
				return err
			}
			f, err := cliconfig.Load(path)
			if err != nil {
				return err
			}
			views := []contextView{}
			for name, c := range f.Contexts {
				views = append(views, contextView{Name: name, Server: c.Server, Current: name == f.Current})
			}
			slices.SortFunc(views, func(a, b contextView) int { return cmp.Compare(a.Name, b.Name) })
			return render(cmd.OutOrStdout(), outputFormat(cmd), views, func() *table {
				t := &table{header: []string{"CURRENT", "NAME", "SERVER"}}
				for _, v := range views {
					cur := ""
					if v.Current {
						cur = "*"
					}
					t.add(cur, v.Name, v.Server)
				}
				return t
			})
		},
	}
	outputFlag(cmd)
	return cmd
}

func useContextCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "use-context NAME",
		Short: "Make a saved context current",
		Args:  args(1, 1),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
			path, err := cliconfig.Path(os.Getenv)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			f, _ := cliconfig.Load(path)
			var names []cobra.Completion
			for n := range f.Contexts {
				names = append(names, n)
			}
			slices.Sort(names)
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			path, err := cliconfig.Path(os.Getenv)
			if err != nil {
				return err
			}
			if err := cliconfig.Use(path, a[0]); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "context %q is current\n", a[0])
			return err
		},
	}
}
