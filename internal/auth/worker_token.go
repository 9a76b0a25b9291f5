package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// WorkerToken is the credential of every encode pod of a pool: an
// HMAC-SHA256 of the pool id under the server secret. The operator writes it
// into the pool's Secret; the coordinator recomputes it, so no token is
// stored anywhere and rotating the secret rotates every pool's token.
func WorkerToken(secret []byte, pool string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("mpegflow-worker-token\x00" + pool))
	return hex.EncodeToString(m.Sum(nil))
}

// WorkerTokenValid checks a presented token for pool in constant time.
func WorkerTokenValid(secret []byte, pool, token string) bool {
	return hmac.Equal([]byte(WorkerToken(secret, pool)), []byte(token))
}
