package apiv1

import "time"

// Page is one page of a collection, newest first. NextCursor, when set,
// fetches the next page (?cursor=); an empty NextCursor means this was the
// last one. Collections that are never paged answer a Page with no cursor.
type Page[T any] struct {
	// Items are the page's elements; never null on the wire.
	Items []T `json:"items"`
	// NextCursor is opaque: pass it back as is.
	NextCursor string `json:"next_cursor,omitempty"`
}

// PresignedURL grants one operation (Method) on one stored object until
// ExpiresAt, with no API key: bytes go straight to object storage.
type PresignedURL struct {
	// URL is where to send the request.
	URL string `json:"url"`
	// Method is the HTTP method the signature covers (PUT or GET).
	Method string `json:"method"`
	// ExpiresAt is when the signature stops working.
	ExpiresAt time.Time `json:"expires_at"`
}
