package server

import (
	"log/slog"

	"github.com/mpegflow/mpegflow/internal/store"
)

// MigrateUp applies every pending migration: `serve --migrate` and `dev`
// run it before they open the server.
func MigrateUp(databaseURL string, log *slog.Logger) error {
	m, err := store.NewMigrator(databaseURL, log)
	if err != nil {
		return err
	}
	defer m.Close()
	return m.Up()
}
