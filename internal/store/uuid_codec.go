package store

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// AfterConnect prepares a new connection of the store's pools: Open and
// OpenHotPath set it, and a pool opened otherwise for the store (a
// benchmark's) sets it as pgxpool.Config.AfterConnect too.
//
// It teaches the connection's type map github.com/google/uuid's UUID
// (uuidCodec). Left to itself pgx reaches a uuid.UUID through its
// driver.Valuer: it formats the id as text, fails to encode the text as
// binary uuid, builds an error with fmt, parses the text back and encodes
// that (about 1.5 µs and 20 allocations an id, against 0.08 µs and 2 as 16
// bytes), and it scans one through its sql.Scanner, by way of text again
// (0.2 µs and 4 allocations). A job's submission, claim and completion pass
// and scan a dozen ids; at 1,000 jobs/s this was 28 µs of Go CPU a job.
// (github.com/vgarvardt/pgx-google-uuid wraps the type the same way for
// encoding, but its scan wrapper comes after pgx's sql.Scanner case, so
// scans keep the slow path, and it turns a NULL scanned into a uuid.UUID
// into an error where the scanner leaves the id as it was.)
func AfterConnect(_ context.Context, conn *pgx.Conn) error {
	registerUUID(conn.TypeMap())
	return nil
}

// registerUUID replaces m's uuid type, and the element type of its uuid[]
// (which points at the type it was registered with), by uuidCodec.
func registerUUID(m *pgtype.Map) {
	t := &pgtype.Type{Name: "uuid", OID: pgtype.UUIDOID, Codec: uuidCodec{}}
	m.RegisterType(t)
	m.RegisterType(&pgtype.Type{Name: "_uuid", OID: pgtype.UUIDArrayOID, Codec: &pgtype.ArrayCodec{ElementType: t}})
}

// uuidCodec is pgx's uuid codec that also encodes a uuid.UUID and scans
// into one in the binary format, as the id's 16 bytes, the way it does a
// [16]byte. Everything else (the text format, other Go types) is the
// embedded codec's, and so is what it cannot plan: pgx then falls back as
// before (driver.Valuer, sql.Scanner).
type uuidCodec struct{ pgtype.UUIDCodec }

func (c uuidCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.(uuid.UUID); ok && format == pgtype.BinaryFormatCode {
		return encodeUUIDBinary{}
	}
	return c.UUIDCodec.PlanEncode(m, oid, format, value)
}

func (c uuidCodec) PlanScan(m *pgtype.Map, oid uint32, format int16, target any) pgtype.ScanPlan {
	if _, ok := target.(*uuid.UUID); ok && format == pgtype.BinaryFormatCode {
		return scanUUIDBinary{}
	}
	return c.UUIDCodec.PlanScan(m, oid, format, target)
}

// encodeUUIDBinary writes a uuid.UUID as binary uuid: its 16 bytes.
type encodeUUIDBinary struct{}

func (encodeUUIDBinary) Encode(value any, buf []byte) ([]byte, error) {
	u := value.(uuid.UUID)
	return append(buf, u[:]...), nil
}

// scanUUIDBinary reads binary uuid into a uuid.UUID. A NULL leaves the id
// as it was, as uuid.UUID's sql.Scanner does (a column that may be NULL is
// scanned into a *uuid.UUID, which pgx sets to nil).
type scanUUIDBinary struct{}

func (scanUUIDBinary) Scan(src []byte, target any) error {
	if src == nil {
		return nil
	}
	if len(src) != len(uuid.UUID{}) {
		return fmt.Errorf("scan uuid: %d bytes, want %d", len(src), len(uuid.UUID{}))
	}
	copy(target.(*uuid.UUID)[:], src)
	return nil
}
