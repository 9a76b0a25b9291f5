package client

import "time"

// Page is one page of a collection, newest first. NextCursor, when set,
// fetches the next page; an empty NextCursor means this was the last one.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// PresignedURL grants one operation (Method) on one stored object until
// ExpiresAt, with no API key.
type PresignedURL struct {
	URL       string    `json:"url"`
	Method    string    `json:"method"`
	ExpiresAt time.Time `json:"expires_at"`
}
