package store

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // registers the pgx5:// driver
	"github.com/golang-migrate/migrate/v4/source/iofs"

	"github.com/mpegflow/mpegflow/migrations"
)

// Migrator applies the embedded migrations with golang-migrate.
type Migrator struct {
	m   *migrate.Migrate
	log *slog.Logger
}

// NewMigrator opens a migrator for databaseURL (a postgres:// URL).
func NewMigrator(databaseURL string, log *slog.Logger) (*Migrator, error) {
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		return nil, fmt.Errorf("open embedded migrations: %w", err)
	}
	u, err := url.Parse(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	u.Scheme = "pgx5"
	m, err := migrate.NewWithSourceInstance("iofs", src, u.String())
	if err != nil {
		return nil, fmt.Errorf("open migrator: %w", err)
	}
	return &Migrator{m: m, log: log}, nil
}

// Close releases the migrator's connection.
func (mg *Migrator) Close() error {
	srcErr, dbErr := mg.m.Close()
	return errors.Join(srcErr, dbErr)
}

// Up applies every pending migration.
func (mg *Migrator) Up() error {
	if err := mg.m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}

// Down rolls back steps migrations (1 when steps <= 0), at most as many as
// are applied.
func (mg *Migrator) Down(steps int) error {
	list, _, _, err := mg.Status()
	if err != nil {
		return err
	}
	applied := 0
	for _, m := range list {
		if m.Applied {
			applied++
		}
	}
	steps = min(max(steps, 1), applied)
	if steps == 0 {
		return nil
	}
	if err := mg.m.Steps(-steps); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate down: %w", err)
	}
	return nil
}

// MigrationStatus is one embedded migration and whether it is applied.
type MigrationStatus struct {
	Version uint
	Name    string
	Applied bool
}

// Status lists the embedded migrations, the applied version and whether the
// last migration failed half-way (dirty), which needs a human.
func (mg *Migrator) Status() (list []MigrationStatus, current uint, dirty bool, err error) {
	current, dirty, err = mg.m.Version()
	if err != nil && !errors.Is(err, migrate.ErrNilVersion) {
		return nil, 0, false, fmt.Errorf("read migration version: %w", err)
	}
	entries, err := fs.Glob(migrations.FS, "*.up.sql")
	if err != nil {
		return nil, 0, false, fmt.Errorf("list migrations: %w", err)
	}
	for _, name := range entries {
		num, rest, ok := strings.Cut(name, "_")
		if !ok {
			continue
		}
		v, perr := strconv.ParseUint(num, 10, 32)
		if perr != nil {
			continue
		}
		list = append(list, MigrationStatus{
			Version: uint(v),
			Name:    strings.TrimSuffix(rest, ".up.sql"),
			Applied: uint(v) <= current,
		})
	}
	slices.SortFunc(list, func(a, b MigrationStatus) int { return int(a.Version) - int(b.Version) })
	return list, current, dirty, nil
}
