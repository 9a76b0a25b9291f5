// Package client is a typed Go client of MpegFlow's REST API and its
// WebSocket event stream. The CLI's jobs, pools, workflows and assets verbs
// are built on it, and programs embedding MpegFlow can use it the same way.
//
// Every method takes a context first and answers either the decoded
// resource or an error that reads well on one line: an API refusal is a
// *Error carrying the RFC 9457 problem (status, stable type, detail and
// the offending fields), and a server that cannot be reached is an
// *UnreachableError that says where it looked and what to do. A call the
// API's rate limit refuses (429) is sent again after its Retry-After, up to
// Config.RateLimitWait of waiting in all.
//
// Bytes never pass through the API: uploads and downloads go straight to
// object storage through the presigned URLs the API hands out (UploadAsset,
// UploadFile, Fetch, Download).
package client
