package auth

import "errors"

// Invitation tokens look like API keys with their own scheme,
// "mfi_<prefix>_<secret>": an admin hands one to a member, who exchanges it
// once, without any other credential, for an API key of their own. As with
// keys only the SHA-256 is stored (HashKey) and compared in constant time
// (KeyMatches); the prefix finds the row.
const invitationScheme = "mfi"

// ErrMalformedInvitation means the presented string is not an invitation
// token (an API key, say, or a truncated paste).
var ErrMalformedInvitation = errors.New("malformed invitation token")

// NewInvitationToken makes a fresh token; it returns the token to show once,
// its lookup prefix and the hash to store.
func NewInvitationToken() (token, prefix string, hash []byte) {
	return newToken(invitationScheme)
}

// InvitationPrefix returns the lookup prefix of a presented token.
func InvitationPrefix(token string) (string, error) {
	p, ok := tokenPrefix(invitationScheme, token)
	if !ok {
		return "", ErrMalformedInvitation
	}
	return p, nil
}
