package testenv

import (
	"context"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5"
)

// OperatorLogin creates a login in the group role mpegflow_operator, as a
// deployment would (migrations/0005_operator_role.up.sql), through adminURL,
// and returns dbURL with that login as its user. The login is dropped when
// the test ends.
func OperatorLogin(t testing.TB, adminURL, dbURL string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatalf("connect to postgres: %v", err)
	}
	defer conn.Close(ctx)
	login := randomName("mpegflow_operator_")
	if _, err := conn.Exec(ctx, "CREATE ROLE "+login+" LOGIN IN ROLE mpegflow_operator"); err != nil {
		t.Fatalf("create the operator's login: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), adminURL)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		// The login owns nothing: it can go before the test's database.
		_, _ = c.Exec(context.Background(), "DROP ROLE IF EXISTS "+login)
	})
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("parse database URL: %v", err)
	}
	u.User = url.User(login)
	return u.String()
}
