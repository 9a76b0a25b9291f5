package store

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
)

// Page asks for one page of a newest-first list. Cursor is opaque to clients:
// it encodes the (created_at, id) of the last row they saw (keyset paging).
type Page struct {
	Limit  int
	Cursor string
	after  *time.Time
	afterI uuid.UUID
}

// ErrBadCursor means a client sent a cursor this server did not make.
var ErrBadCursor = errors.New("invalid cursor")

type cursorBody struct {
	T time.Time `json:"t"`
	I uuid.UUID `json:"i"`
}

// ParsePage validates limit (1..200, default 50) and decodes cursor.
func ParsePage(limit int, cursor string) (Page, error) {
	p := Page{Limit: limit}
	if cursor == "" {
		return p, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return p, ErrBadCursor
	}
	var c cursorBody
	if err := json.Unmarshal(raw, &c); err != nil || c.T.IsZero() {
		return p, ErrBadCursor
	}
	p.Cursor, p.after, p.afterI = cursor, &c.T, c.I
	return p, nil
}

// NextCursor encodes the position after the last row of a page.
func NextCursor(createdAt time.Time, id uuid.UUID) string {
	raw, _ := json.Marshal(cursorBody{T: createdAt, I: id}) // cannot fail for these types
	return base64.RawURLEncoding.EncodeToString(raw)
}

func (p Page) limit() int {
	switch {
	case p.Limit <= 0:
		return 50
	case p.Limit > 200:
		return 200
	}
	return p.Limit
}

func (p Page) cursor() (*time.Time, uuid.UUID) { return p.after, p.afterI }

func newID() uuid.UUID { return uuid.Must(uuid.NewV7()) }
