package contentkey

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"

	"github.com/google/uuid"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
)

// Size is the length of a content key in bytes (AES-128).
const Size = 16

// Key is a content key and its ID. It never prints its value: String and
// LogValue give the key ID only.
type Key struct {
	ID    uuid.UUID
	Value []byte
}

// New makes a random key with a random ID.
func New() (Key, error) {
	k := Key{Value: make([]byte, Size)}
	if _, err := rand.Read(k.Value); err != nil {
		return Key{}, fmt.Errorf("content key: %w", err)
	}
	id, err := uuid.NewRandom()
	if err != nil {
		return Key{}, fmt.Errorf("content key id: %w", err)
	}
	k.ID = id
	return k, nil
}

// String names the key by its ID.
func (k Key) String() string { return "content key " + k.ID.String() }

// GoString keeps the key out of %#v too.
func (k Key) GoString() string { return k.String() }

// LogValue keeps the key out of logs.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// JWK returns the key as a ClearKey license carries it: a JSON Web Key
// with kid and k in unpadded base64url.
func (k Key) JWK() apiv1.ClearKeyJWK {
	return apiv1.ClearKeyJWK{Kty: "oct", Kid: base64.RawURLEncoding.EncodeToString(k.ID[:]), K: base64.RawURLEncoding.EncodeToString(k.Value)}
}
