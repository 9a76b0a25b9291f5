// Package testenv gives integration tests their own slice of the real
// services `make test` starts (scripts/with-services.sh): a fresh, migrated
// Postgres database, a Redis key prefix and an S3 bucket per test. A missing
// service fails the test; it never skips.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/mpegflow/mpegflow/internal/objstore"
	"github.com/mpegflow/mpegflow/internal/store"
)

func need(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run the tests with `make test`, whose scripts/with-services.sh starts Postgres, Redis and S3 (or set the variable to a running service)", name)
	}
	return v
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// DatabaseURL creates a fresh database, migrates it to the latest version and
// returns its URL; the database is dropped when the test ends.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	admin := need(t, "MPEGFLOW_TEST_DATABASE_URL")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to test postgres: %v", err)
	}
	defer conn.Close(ctx)
	name := randomName("mpegflow_test_")
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("connect to drop test database: %v", err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse MPEGFLOW_TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	dbURL := u.String()
	m, err := store.NewMigrator(dbURL, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open migrator: %v", err)
	}
	defer m.Close()
	if err := m.Up(); err != nil {
		t.Fatalf("migrate test database: %v", err)
	}
	return dbURL
}

// Postgres returns a pool on a fresh, migrated database.
func Postgres(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := store.Open(context.Background(), DatabaseURL(t))
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Redis returns a client and a key prefix private to the test; keys under
// the prefix are deleted when the test ends (never FLUSHALL: other packages
// share the server).
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	opts, err := redis.ParseURL(need(t, "MPEGFLOW_TEST_REDIS_URL"))
	if err != nil {
		t.Fatalf("parse MPEGFLOW_TEST_REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opts)
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("ping test redis: %v", err)
	}
	prefix := randomName("test:")
	t.Cleanup(func() {
		defer rdb.Close()
		iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	return rdb, prefix
}

// S3 returns the configuration of a fresh bucket on the test S3 server,
// which verifies request signatures like AWS does.
func S3(t testing.TB) objstore.Config {
	t.Helper()
	cfg := objstore.Config{
		Endpoint:        need(t, "MPEGFLOW_TEST_S3_ENDPOINT"),
		Region:          "us-east-1",
		Bucket:          strings.ReplaceAll(randomName("mpegflow-test-"), "_", "-"),
		AccessKeyID:     need(t, "MPEGFLOW_TEST_S3_ACCESS_KEY"),
		SecretAccessKey: need(t, "MPEGFLOW_TEST_S3_SECRET_KEY"),
		PathStyle:       true,
		PresignTTL:      15 * time.Minute,
	}
	st, err := objstore.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("objstore: %v", err)
	}
	if err := st.EnsureBucket(context.Background()); err != nil {
		t.Fatalf("create test bucket: %v", err)
	}
	return cfg
}
