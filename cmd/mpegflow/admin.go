package main

import (
	"fmt"
	"net/mail"

	"github.com/spf13/cobra"

	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/store"
)

func adminCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "admin", Short: "Platform administration"}
	var org, email string
	var superadmin bool
	boot := &cobra.Command{
		Use:   "bootstrap",
		Short: "Create an organization and its owner, and print the owner's API key once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if org == "" || len(org) > 200 {
				return fmt.Errorf("--org: give the organization's name (1 to 200 characters)")
			}
			if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
				return fmt.Errorf("--email: %q is not an email address", email)
			}
			cfg, _, err := loadConfig()
			if err != nil {
				return err
			}
			if err := cfg.Require("DATABASE_URL"); err != nil {
				return err
			}
			pool, err := store.Open(cmd.Context(), cfg.DatabaseURL)
			if err != nil {
				return err
			}
			defer pool.Close()
			role := auth.Owner
			if superadmin {
				role = auth.SuperAdmin
			}
			b, err := store.New(pool).BootstrapOrg(cmd.Context(), org, email, role)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "organization: %s (%s)\n", b.Org.Name, b.Org.ID)
			fmt.Fprintf(out, "%s: %s\n", role, b.User.Email)
			fmt.Fprintf(out, "api key (shown once, store it now): %s\n", b.Key)
			return nil
		},
	}
	boot.Flags().StringVar(&org, "org", "", "organization name")
	boot.Flags().StringVar(&email, "email", "", "owner's email address")
	boot.Flags().BoolVar(&superadmin, "superadmin", false, "make the member a platform SuperAdmin instead of an Owner")
	cmd.AddCommand(boot)
	return cmd
}
