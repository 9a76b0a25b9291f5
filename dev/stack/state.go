package stack

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Files `mpegflow dev` keeps in the data directory next to the services'.
const (
	// ServerSecretFile holds the server secret (signs worker tokens), 0600.
	ServerSecretFile = "server-secret"
	// OwnerKeyFile holds the API key of the Local organization's owner, 0600.
	OwnerKeyFile = "owner-key"
	// InfoFile describes the running dev stack (see Info), 0600: its URLs
	// carry the services' passwords.
	InfoFile = "dev.json"
	// PostgresPasswordFile holds the password of the private PostgreSQL's
	// superuser mpegflow, 0600. Deleting it sets a new one on the next start.
	PostgresPasswordFile = "postgres-password"
	// RedisPasswordFile holds the private Redis's password (requirepass),
	// 0600.
	RedisPasswordFile = "redis-password"
)

// Info is what a running `mpegflow dev` tells other processes (`mpegflow dev
// env`, scripts) about itself through DATA/dev.json.
type Info struct {
	Server      string    `json:"server"`       // REST API base URL
	Coordinator string    `json:"coordinator"`  // gRPC host:port
	Metrics     string    `json:"metrics"`      // metrics URL
	PID         int       `json:"pid"`          // the dev process
	StartedAt   time.Time `json:"started_at"`   // when it became ready
	DatabaseURL string    `json:"database_url"` // carries the password
	RedisURL    string    `json:"redis_url"`    // carries the password
	S3Endpoint  string    `json:"s3_endpoint"`
}

// WriteInfo writes DATA/dev.json.
func WriteInfo(dir string, info Info) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", InfoFile, err)
	}
	return writeFileAtomic(filepath.Join(dir, InfoFile), append(b, '\n'), 0o600)
}

// ReadInfo reads DATA/dev.json.
func ReadInfo(dir string) (Info, error) {
	var info Info
	path := filepath.Join(dir, InfoFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return info, fmt.Errorf("%s not found: start `mpegflow dev --data %s` first", path, dir)
	}
	if err != nil {
		return info, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("%s is not valid JSON: %w", path, err)
	}
	return info, nil
}

// ServerSecret returns the secret in DATA/server-secret, generating it
// (32 random bytes, hex) on the first call.
func ServerSecret(dir string) (string, error) {
	path := filepath.Join(dir, ServerSecretFile)
	b, err := os.ReadFile(path)
	if err == nil {
		secret := strings.TrimSpace(string(b))
		if len(secret) < 32 {
			return "", fmt.Errorf("%s holds fewer than 32 characters: delete it to generate a new secret", path)
		}
		return secret, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	secret := randomHex(32)
	if err := writeFileAtomic(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", err
	}
	return secret, nil
}

// ReadOwnerKey returns the key in DATA/owner-key; ok is false when the file
// does not exist (the organization is not bootstrapped yet).
func ReadOwnerKey(dir string) (key string, ok bool, err error) {
	path := filepath.Join(dir, OwnerKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read %s: %w", path, err)
	}
	return strings.TrimSpace(string(b)), true, nil
}

// WriteOwnerKey stores the owner's key in DATA/owner-key with mode 0600.
func WriteOwnerKey(dir, key string) error {
	return writeFileAtomic(filepath.Join(dir, OwnerKeyFile), []byte(key+"\n"), 0o600)
}
