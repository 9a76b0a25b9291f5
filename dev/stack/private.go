package stack

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// passwordBytes is the entropy of a generated service password (hex-encoded,
// so it needs no quoting in a URL, a config file or SQL).
const passwordBytes = 24

// readSecret returns the content of a secret file without surrounding
// white space; ok is false when the file does not exist. A file that others
// may read (copied by hand, say) is made 0600 first.
func readSecret(path string) (secret string, ok bool, err error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("devstack: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return "", false, fmt.Errorf("devstack: make %s private: %w", path, err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", false, fmt.Errorf("devstack: %w", err)
	}
	secret = strings.TrimSpace(string(b))
	if secret == "" {
		return "", false, fmt.Errorf("devstack: %s is empty: delete it and start again to generate a new password", path)
	}
	return secret, true, nil
}

// writeSecret stores secret in path with mode 0600.
func writeSecret(path, secret string) error {
	if err := writeFileAtomic(path, []byte(secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	return nil
}

// newPassword returns a fresh random password.
func newPassword() string { return randomHex(passwordBytes) }

// restrictDir removes group and other permissions from dir when it has
// any: the data directory holds the services' passwords and data. (Root's
// stack then lets the postgres group traverse it; see handToPostgresUser.)
func restrictDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(dir, perm&^0o077); err != nil {
			return fmt.Errorf("devstack: make %s private: %w", dir, err)
		}
	}
	return nil
}

// privateDir creates dir with mode 0700, or takes group and other
// permissions away from the existing one.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("devstack: create %s: %w", dir, err)
	}
	return restrictDir(dir)
}
