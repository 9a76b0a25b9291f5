package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mpegflow/mpegflow/client"
)

var memberRoles = []string{"viewer", "editor", "admin", "owner"}

func membersCmd() *cobra.Command {
	var api apiFlags
	cmd := apiGroup("members", "List, add, change and remove the organization's members", &api)
	cmd.AddCommand(membersListCmd(&api), membersAddCmd(&api), membersUpdateCmd(&api), membersRemoveCmd(&api))
	return cmd
}

func membersTable(ms []client.Member) *table {
	t := &table{header: []string{"USER-ID", "EMAIL", "NAME", "ROLE", "AGE"}}
	now := time.Now()
	for _, m := range ms {
		t.add(m.UserID, m.Email, m.Name, m.Role, age(m.CreatedAt, now))
	}
	return t
}

func membersListCmd(api *apiFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the organization's members",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := api.client()
			if err != nil {
				return err
			}
			ms, err := c.ListMembers(cmd.Context())
			if err != nil {
				return fmt.Errorf("list members: %w", err)
			}
			return renderPage(cmd, client.Page[client.Member]{Items: ms}, func() *table { return membersTable(ms) })
		},
	}
	outputFlag(cmd)
	return cmd
}

func membersAddCmd(api *apiFlags) *cobra.Command {
	var req client.MemberRequest
	cmd := &cobra.Command{
		Use:     "add EMAIL --role ROLE",
		Short:   "Add a member with a role",
		Example: "  mpegflow members add dana@example.com --role editor --name Dana",
		Args:    args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			if req.Role == "" {
				return usagef("add needs --role (viewer, editor, admin or owner)")
			}
			req.Email = a[0]
			c, err := api.client()
			if err != nil {
				return err
			}
			m, err := c.AddMember(cmd.Context(), req)
			if err != nil {
				return fmt.Errorf("add member %s: %w", a[0], err)
			}
			return render(cmd.OutOrStdout(), outputFormat(cmd), m, func() *table { return membersTable([]client.Member{m}) })
		},
	}
	cmd.Flags().StringVar(&req.Role, "role", "", "viewer, editor, admin or owner")
	cmd.Flags().StringVar(&req.Name, "name", "", "what the organization calls them")
	_ = cmd.RegisterFlagCompletionFunc("role", cobra.FixedCompletions(memberRoles, cobra.ShellCompDirectiveNoFileComp))
	outputFlag(cmd)
	return cmd
}

func membersUpdateCmd(api *apiFlags) *cobra.Command {
	var role, name string
	cmd := &cobra.Command{
		Use:   "update USER-ID",
		Short: "Change a member's role or name (only the flags given change)",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			var p client.MemberPatch
			if cmd.Flags().Changed("role") {
				p.Role = &role
			}
			if cmd.Flags().Changed("name") {
				p.Name = &name
			}
			if p == (client.MemberPatch{}) {
				return usagef("nothing to update: give --role, --name or both")
			}
			c, err := api.client()
			if err != nil {
				return err
			}
			m, err := c.UpdateMember(cmd.Context(), a[0], p)
			if err != nil {
				return fmt.Errorf("update member %s: %w", a[0], err)
			}
			return render(cmd.OutOrStdout(), outputFormat(cmd), m, func() *table { return membersTable([]client.Member{m}) })
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "viewer, editor, admin or owner")
	cmd.Flags().StringVar(&name, "name", "", "what the organization calls them")
	_ = cmd.RegisterFlagCompletionFunc("role", cobra.FixedCompletions(memberRoles, cobra.ShellCompDirectiveNoFileComp))
	outputFlag(cmd)
	return cmd
}

func membersRemoveCmd(api *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "remove USER-ID",
		Short: "Remove a member from the organization",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := api.client()
			if err != nil {
				return err
			}
			if err := c.RemoveMember(cmd.Context(), a[0]); err != nil {
				return fmt.Errorf("remove member %s: %w", a[0], err)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "member %s removed\n", a[0])
			return err
		},
	}
}

func apiKeysCmd() *cobra.Command {
	var api apiFlags
	cmd := apiGroup("api-keys", "List, create and revoke your own API keys", &api)
	list := &cobra.Command{
		Use:   "list",
		Short: "List your API keys, revoked ones included (never the secrets)",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := api.client()
			if err != nil {
				return err
			}
			ks, err := c.ListAPIKeys(cmd.Context())
			if err != nil {
				return fmt.Errorf("list API keys: %w", err)
			}
			return renderPage(cmd, client.Page[client.APIKey]{Items: ks}, func() *table { return apiKeysTable(ks) })
		},
	}
	outputFlag(list)
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an API key; the key is shown once",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := api.client()
			if err != nil {
				return err
			}
			k, err := c.CreateAPIKey(cmd.Context(), a[0])
			if err != nil {
				return fmt.Errorf("create API key: %w", err)
			}
			f := outputFormat(cmd)
			if err := render(cmd.OutOrStdout(), f, k, func() *table { return apiKeysTable([]client.APIKey{k.APIKey}) }); err != nil {
				return err
			}
			if f == formatTable {
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "api key (shown once, store it now): %s\n", k.Key)
			}
			return err
		},
	}
	outputFlag(create)
	cmd.AddCommand(list, create,
		actionCmd("revoke ID", "Revoke one of your API keys", "API key", nil, api.client, (*client.Client).RevokeAPIKey, apiKeysTable))
	return cmd
}

func apiKeysTable(ks []client.APIKey) *table {
	t := &table{header: []string{"ID", "NAME", "PREFIX", "AGE", "LAST-USED", "REVOKED"}}
	now := time.Now()
	for _, k := range ks {
		t.add(k.ID, k.Name, k.Prefix, age(k.CreatedAt, now), age(deref(k.LastUsedAt), now), age(deref(k.RevokedAt), now))
	}
	return t
}
