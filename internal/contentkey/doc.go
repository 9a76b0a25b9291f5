// Package contentkey makes the per-job content keys of encrypted outputs
// and seals them for storage.
//
// A key is 16 random bytes (AES-128, what HLS and Common Encryption use)
// with a random key ID. Stored keys are sealed with AES-256-GCM under a key
// derived from the server secret (HKDF-SHA256), with the job id as
// associated data, so a sealed key copied onto another job's row does not
// open. Changing MPEGFLOW_SERVER_SECRET makes the stored keys unreadable:
// the players of earlier encrypted outputs then get no key.
package contentkey
