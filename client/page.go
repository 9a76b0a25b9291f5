package client

import apiv1 "github.com/mpegflow/mpegflow/api/v1"

// Page is one page of a collection, newest first. NextCursor, when set,
// fetches the next page; an empty NextCursor means this was the last one.
type Page[T any] = apiv1.Page[T]

// PresignedURL grants one operation (Method) on one stored object until
// ExpiresAt, with no API key.
type PresignedURL = apiv1.PresignedURL
