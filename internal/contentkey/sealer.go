package contentkey

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// sealInfo binds the derived key to its use: the same server secret signs
// worker tokens, and a key derived for one purpose must not serve another.
const sealInfo = "mpegflow content keys v1"

// ErrUnsealable means a sealed key did not open: it was sealed under
// another server secret, for another job, or changed.
var ErrUnsealable = errors.New("content key does not open with this server secret and job")

// Sealer seals and opens content keys (see the package documentation).
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer derives the sealing key from the server secret (at least 32
// bytes, as serve requires).
func NewSealer(serverSecret []byte) (*Sealer, error) {
	if len(serverSecret) < 32 {
		return nil, errors.New("content key sealer: the server secret must be at least 32 bytes")
	}
	key, err := hkdf.Key(sha256.New, serverSecret, nil, sealInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("content key sealer: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("content key sealer: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("content key sealer: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal returns the key value sealed for jobID: a random nonce followed by
// the ciphertext.
func (s *Sealer) Seal(jobID uuid.UUID, value []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(value)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal content key: %w", err)
	}
	return s.aead.Seal(nonce, nonce, value, jobID[:]), nil
}

// Open returns the key value Seal sealed for jobID, or ErrUnsealable.
func (s *Sealer) Open(jobID uuid.UUID, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, ErrUnsealable
	}
	value, err := s.aead.Open(nil, sealed[:n], sealed[n:], jobID[:])
	if err != nil || len(value) != Size {
		return nil, ErrUnsealable
	}
	return value, nil
}
