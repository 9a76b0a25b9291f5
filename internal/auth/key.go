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
func NewKey() (key, prefix string, hash []byte) { return newToken(keyScheme) }

// newToken makes "<scheme>_<prefix>_<secret>" with 40 random bits of prefix
// and 160 of secret: API keys and invitation tokens share the shape and
// differ in scheme, so one can never be taken for the other.
func newToken(scheme string) (token, prefix string, hash []byte) {
	p := make([]byte, 5)
	s := make([]byte, 20)
	_, _ = rand.Read(p) // crypto/rand.Read never fails on supported platforms
	_, _ = rand.Read(s)
	prefix = scheme + "_" + strings.ToLower(b32.EncodeToString(p))
	token = prefix + "_" + strings.ToLower(b32.EncodeToString(s))
	return token, prefix, HashKey(token)
}

// HashKey is the stored form of a key (and of an invitation token).
func HashKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// KeyPrefix returns the public prefix of a presented key.
func KeyPrefix(key string) (string, error) {
	p, ok := tokenPrefix(keyScheme, key)
	if !ok {
		return "", ErrMalformedKey
	}
	return p, nil
}

func tokenPrefix(scheme, token string) (string, bool) {
	parts := strings.Split(token, "_")
	if len(parts) != 3 || parts[0] != scheme || len(parts[1]) != 8 || len(parts[2]) != 32 {
		return "", false
	}
	return parts[0] + "_" + parts[1], true
}

// KeyMatches compares a presented key (or invitation token) with a stored
// hash in constant time.
func KeyMatches(key string, hash []byte) bool {
	return subtle.ConstantTimeCompare(HashKey(key), hash) == 1
}
