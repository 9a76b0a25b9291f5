package apiv1

import "time"

// MaxPresignParts is the most part URLs one response carries: the URLs of a
// 10,000-part upload come in batches, never in one giant answer.
const MaxPresignParts = 100

// MaxListParts is the most uploaded parts one page of
// GET /v1/assets/{id}/upload/parts lists.
const MaxListParts = 1000

// MultipartUpload tells a client how to send a large asset: POST /v1/assets
// answers it, instead of one presigned PUT, when size_bytes is above the
// server's multipart threshold. The file is cut into PartCount parts of
// PartSize bytes (the last one holds the rest); each goes to storage
// through its own presigned URL, and POST /v1/assets/{id}/upload/complete
// joins them. The asset's id names the upload in every later call.
type MultipartUpload struct {
	PartSize  int64 `json:"part_size"`
	PartCount int   `json:"part_count"`
	// Parts are the presigned URLs of the first parts (at most
	// MaxPresignParts); POST /v1/assets/{id}/upload/parts gives the others.
	Parts []PresignedPart `json:"parts"`
}

// PresignedPart grants the upload of one part: a PUT of exactly SizeBytes
// bytes (the signature binds Content-Length) until ExpiresAt. Storage
// answers the PUT with an ETag header, which completing the upload needs.
type PresignedPart struct {
	PartNumber int       `json:"part_number"`
	SizeBytes  int64     `json:"size_bytes"`
	Method     string    `json:"method"`
	URL        string    `json:"url"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// PresignPartsRequest asks for the URLs of some parts (1 to
// MaxPresignParts part numbers, each from 1 to the upload's part count):
// the next batch, or the parts a resumed upload still misses.
type PresignPartsRequest struct {
	PartNumbers []int `json:"part_numbers"`
}

// PresignedParts answers PresignPartsRequest, in the order asked.
type PresignedParts struct {
	Parts []PresignedPart `json:"parts"`
}

// UploadedPart is a part storage holds, as GET /v1/assets/{id}/upload/parts
// lists it for a client resuming an upload.
type UploadedPart struct {
	PartNumber int    `json:"part_number"`
	ETag       string `json:"etag"`
	SizeBytes  int64  `json:"size_bytes"`
}

// UploadedParts is one page of uploaded parts in part order. NextCursor,
// when set, is the cursor query parameter of the next page.
type UploadedParts struct {
	Items      []UploadedPart `json:"items"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

// CompleteUploadRequest lists every part of the upload, once each, in order
// from 1, with the ETag storage answered when the part was uploaded. The
// server checks them against what storage holds before it joins anything.
type CompleteUploadRequest struct {
	Parts []CompletedPart `json:"parts"`
}

// CompletedPart is one part of CompleteUploadRequest.
type CompletedPart struct {
	PartNumber int    `json:"part_number"`
	ETag       string `json:"etag"`
}
