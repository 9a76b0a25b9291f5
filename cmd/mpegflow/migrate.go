package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mpegflow/mpegflow/internal/store"
)

func migrateCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "migrate", Short: "Apply, roll back or show database migrations (DATABASE_URL)"}
	open := func() (*store.Migrator, error) {
		cfg, log, err := loadConfig()
		if err != nil {
			return nil, err
		}
		if err := cfg.Require("DATABASE_URL"); err != nil {
			return nil, err
		}
		return store.NewMigrator(cfg.DatabaseURL, log)
	}
	up := &cobra.Command{Use: "up", Short: "Apply every pending migration", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := open()
			if err != nil {
				return err
			}
			defer m.Close()
			if err := m.Up(); err != nil {
				return err
			}
			return printStatus(cmd, m)
		}}
	var steps int
	down := &cobra.Command{Use: "down", Short: "Roll back migrations (one by default)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := open()
			if err != nil {
				return err
			}
			defer m.Close()
			if err := m.Down(steps); err != nil {
				return err
			}
			return printStatus(cmd, m)
		}}
	down.Flags().IntVar(&steps, "steps", 1, "how many migrations to roll back")
	status := &cobra.Command{Use: "status", Short: "List migrations and which are applied", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := open()
			if err != nil {
				return err
			}
			defer m.Close()
			return printStatus(cmd, m)
		}}
	cmd.AddCommand(up, down, status)
	return cmd
}

func printStatus(cmd *cobra.Command, m *store.Migrator) error {
	list, current, dirty, err := m.Status()
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	for _, s := range list {
		mark := "pending"
		if s.Applied {
			mark = "applied"
		}
		fmt.Fprintf(out, "%04d  %-24s %s\n", s.Version, s.Name, mark)
	}
	fmt.Fprintf(out, "current version: %d\n", current)
	if dirty {
		return fmt.Errorf("migration %d failed half-way (dirty): fix the database by hand, then force the version", current)
	}
	return nil
}
