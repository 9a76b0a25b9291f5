package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"strings"
)

// API keys look like "mfk_<prefix>_<secret>". The prefix (12 characters) is
// stored in clear and shown in lists so people can tell keys apart; only a
// SHA-256 of the whole key is stored. The secret carries 160 random bits, so
// a fast hash is the right tool (there is nothing to brute-force).
const keyScheme = "mfk"

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// ErrMalformedKey means the bearer token is not an MpegFlow API key.
var ErrMalformedKey = errors.New("malformed api key")

// NewKey makes a fresh key; it returns the key to show once, its public
// prefix and the hash to store.
func NewKey() (key, prefix string, hash []byte) {
	p := make([]byte, 5)
	s := make([]byte, 20)
	_, _ = rand.Read(p) // crypto/rand.Read never fails on supported platforms
	_, _ = rand.Read(s)
	prefix = keyScheme + "_" + strings.ToLower(b32.EncodeToString(p))
	key = prefix + "_" + strings.ToLower(b32.EncodeToString(s))
	return key, prefix, HashKey(key)
}

// HashKey is the stored form of a key.
func HashKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// KeyPrefix returns the public prefix of a presented key.
func KeyPrefix(key string) (string, error) {
	parts := strings.Split(key, "_")
	if len(parts) != 3 || parts[0] != keyScheme || len(parts[1]) != 8 || len(parts[2]) != 32 {
		return "", ErrMalformedKey
	}
	return parts[0] + "_" + parts[1], nil
}

// KeyMatches compares a presented key with a stored hash in constant time.
func KeyMatches(key string, hash []byte) bool {
	return subtle.ConstantTimeCompare(HashKey(key), hash) == 1
}
