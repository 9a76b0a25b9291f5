package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
)

// ConsoleSession is a signed-in browser: the session id its HttpOnly
// cookie carries and the CSRF token its scripts repeat in a header. Both
// are shown once, at sign-in; only their hashes are stored.
type ConsoleSession struct {
	ID        string
	CSRF      string
	Principal Principal
	ExpiresAt time.Time
}

// CreateConsoleSession signs a browser in with an API key: the session acts
// as the key until expiry, sign-out or the key's revocation. The key is
// checked as Authenticate checks it (an unknown or revoked key is
// ErrNotFound). Expired sessions are deleted on the way.
func (s *Store) CreateConsoleSession(ctx context.Context, key string, now time.Time, ttl time.Duration) (ConsoleSession, error) {
	p, err := s.Authenticate(ctx, key)
	if err != nil {
		return ConsoleSession{}, err
	}
	cs := ConsoleSession{ID: randomToken(), CSRF: randomToken(), Principal: p, ExpiresAt: now.Add(ttl)}
	_, err = s.pool.Exec(ctx, `WITH gone AS (DELETE FROM console_sessions WHERE expires_at < $5)
		INSERT INTO console_sessions (id_hash, key_id, csrf_hash, created_at, expires_at) VALUES ($1, $2, $3, $5, $4)`,
		tokenHash(cs.ID), p.KeyID, tokenHash(cs.CSRF), cs.ExpiresAt, now)
	if err != nil {
		return ConsoleSession{}, fmt.Errorf("create console session: %w", err)
	}
	return cs, nil
}

// ConsoleSessionPrincipal resolves a session id to the principal of its
// key, and checks csrf against the session's token unless csrf is nil (a
// request that changes nothing). An unknown, expired or signed-out
// session, or one whose key was revoked, is ErrNotFound; a CSRF token that
// does not match is ErrCSRF.
func (s *Store) ConsoleSessionPrincipal(ctx context.Context, id string, csrf *string, now time.Time) (Principal, error) {
	var want []byte
	p, err := s.principal(ctx, "cs.csrf_hash", `JOIN console_sessions cs ON cs.key_id = k.id WHERE cs.id_hash = $1 AND cs.expires_at > $2`,
		[]any{tokenHash(id), now}, &want)
	if err != nil {
		return Principal{}, err
	}
	if csrf != nil && subtle.ConstantTimeCompare(tokenHash(*csrf), want) != 1 {
		return Principal{}, ErrCSRF
	}
	return p, nil
}

// DeleteConsoleSession signs a session out; an unknown one is no error.
func (s *Store) DeleteConsoleSession(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM console_sessions WHERE id_hash = $1`, tokenHash(id)); err != nil {
		return fmt.Errorf("delete console session: %w", err)
	}
	return nil
}

// ErrCSRF is a state-changing console request whose CSRF token is missing
// or not its session's.
var ErrCSRF = errors.New("the request's CSRF token is not its session's")

// randomToken is 32 random bytes, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

func tokenHash(t string) []byte {
	h := sha256.Sum256([]byte(t))
	return h[:]
}
