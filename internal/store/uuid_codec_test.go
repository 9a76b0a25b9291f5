package store_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/testenv"
)

// The store's connections pass a uuid.UUID as its 16 bytes and scan one the
// same way; every shape the store uses round-trips through Postgres, in
// both directions, with NULLs as before.
func TestUUIDCodecRoundTrips(t *testing.T) {
	ctx := t.Context()
	db := testenv.Postgres(t)
	a, b := uuid.New(), uuid.New()

	t.Run("value, pointer and NULL pointer in, text out", func(t *testing.T) {
		var sa, sb string
		var isNull bool
		require.NoError(t, db.QueryRow(ctx, `SELECT $1::uuid::text, $2::uuid::text, $3::uuid IS NULL`, a, &b, (*uuid.UUID)(nil)).
			Scan(&sa, &sb, &isNull))
		require.Equal(t, a.String(), sa)
		require.Equal(t, b.String(), sb)
		require.True(t, isNull)
	})

	t.Run("text in, value and pointers out", func(t *testing.T) {
		var got uuid.UUID
		var ptr, nilPtr *uuid.UUID
		require.NoError(t, db.QueryRow(ctx, `SELECT $1::text::uuid, $2::text::uuid, NULL::uuid`, a.String(), b.String()).
			Scan(&got, &ptr, &nilPtr))
		require.Equal(t, a, got)
		require.NotNil(t, ptr)
		require.Equal(t, b, *ptr)
		require.Nil(t, nilPtr)
	})

	t.Run("NULL into a value leaves it as it was", func(t *testing.T) {
		got := a
		require.NoError(t, db.QueryRow(ctx, `SELECT NULL::uuid`).Scan(&got))
		require.Equal(t, a, got)
	})

	t.Run("arrays both ways", func(t *testing.T) {
		var text string
		var back []uuid.UUID
		require.NoError(t, db.QueryRow(ctx, `SELECT $1::uuid[]::text, $1::uuid[]`, []uuid.UUID{a, b}).Scan(&text, &back))
		require.Equal(t, "{"+a.String()+","+b.String()+"}", text)
		require.Equal(t, []uuid.UUID{a, b}, back)
	})

	t.Run("stored and compared as uuid", func(t *testing.T) {
		var equal bool
		require.NoError(t, db.QueryRow(ctx, `SELECT $1::uuid = $2::text::uuid`, a, a.String()).Scan(&equal))
		require.True(t, equal)
	})
}

// An id is encoded without going through text: no more allocations than a
// [16]byte takes (pgx's way through uuid.UUID's driver.Valuer took 20).
func TestUUIDCodecEncodesWithoutText(t *testing.T) {
	conn, err := testenv.Postgres(t).Acquire(t.Context())
	require.NoError(t, err)
	defer conn.Release()
	m := conn.Conn().TypeMap()
	u := uuid.New()
	buf := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(100, func() {
		out, err := m.Encode(pgtype.UUIDOID, pgtype.BinaryFormatCode, u, buf[:0])
		if err != nil || len(out) != 16 {
			t.Fatalf("encode: %v, %d bytes", err, len(out))
		}
	})
	require.LessOrEqual(t, allocs, 2.0)
	var back uuid.UUID
	require.NoError(t, m.Scan(pgtype.UUIDOID, pgtype.BinaryFormatCode, u[:], &back))
	require.Equal(t, u, back)
	require.Error(t, m.Scan(pgtype.UUIDOID, pgtype.BinaryFormatCode, u[:15], &back), "a uuid of 15 bytes")
}
