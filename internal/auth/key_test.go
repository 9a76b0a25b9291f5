package auth_test

import (
	"crypto/sha256"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/auth"
)

// keyFormat is the documented shape: "mfk_", 8 lower-case base32 characters
// (40 random bits), "_", 32 lower-case base32 characters (160 random bits).
var keyFormat = regexp.MustCompile(`^mfk_[a-z2-7]{8}_[a-z2-7]{32}$`)

func TestNewKeyFormat(t *testing.T) {
	t.Parallel()
	key, prefix, hash := auth.NewKey()

	assert.Regexp(t, keyFormat, key)
	assert.Len(t, prefix, 12)
	assert.True(t, strings.HasPrefix(key, prefix+"_"), "key %q starts with its prefix %q", key, prefix)
	sum := sha256.Sum256([]byte(key))
	assert.Equal(t, sum[:], hash, "the stored hash is SHA-256 of the whole key")
	assert.Equal(t, hash, auth.HashKey(key))

	got, err := auth.KeyPrefix(key)
	require.NoError(t, err)
	assert.Equal(t, prefix, got)
	assert.True(t, auth.KeyMatches(key, hash))
}

func TestNewKeyUnique(t *testing.T) {
	t.Parallel()
	const count = 1000
	keys := make(map[string]bool, count)
	prefixes := make(map[string]bool, count)
	for range count {
		key, prefix, _ := auth.NewKey()
		require.False(t, keys[key], "duplicate key %s", key)
		require.False(t, prefixes[prefix], "duplicate prefix %s", prefix)
		keys[key], prefixes[prefix] = true, true
	}
}

func TestKeyMatchesRejectsTampering(t *testing.T) {
	t.Parallel()
	key, _, hash := auth.NewKey()
	other, _, otherHash := auth.NewKey()

	// flip changes the character at i to another valid base32 character.
	flip := func(s string, i int) string {
		c := byte('a')
		if s[i] == 'a' {
			c = 'b'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	tests := map[string]struct {
		key  string
		hash []byte
	}{
		"last secret character changed":  {key: flip(key, len(key)-1), hash: hash},
		"first secret character changed": {key: flip(key, 13), hash: hash},
		"prefix character changed":       {key: flip(key, 4), hash: hash},
		"upper-cased":                    {key: strings.ToUpper(key), hash: hash},
		"trailing newline":               {key: key + "\n", hash: hash},
		"another key":                    {key: other, hash: hash},
		"right key, another hash":        {key: key, hash: otherHash},
		"truncated hash":                 {key: key, hash: hash[:16]},
		"empty hash":                     {key: key, hash: nil},
		"empty key":                      {key: "", hash: hash},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			assert.False(t, auth.KeyMatches(tc.key, tc.hash))
		})
	}
}

func TestKeyPrefixRejectsMalformed(t *testing.T) {
	t.Parallel()
	key, prefix, _ := auth.NewKey()
	secret := strings.TrimPrefix(key, prefix+"_")

	tests := map[string]string{
		"empty":                 "",
		"garbage":               "not-a-key",
		"prefix only":           prefix,
		"prefix and separator":  prefix + "_",
		"wrong scheme":          "mfx" + key[3:],
		"upper-case scheme":     "MFK" + key[3:],
		"bearer word included":  "Bearer " + key,
		"short prefix":          "mfk_" + prefix[4:11] + "_" + secret,
		"long prefix":           "mfk_" + prefix[4:] + "a_" + secret,
		"short secret":          prefix + "_" + secret[1:],
		"long secret":           key + "a",
		"extra part":            key + "_abc",
		"missing scheme":        strings.TrimPrefix(key, "mfk_"),
		"dash separators":       strings.ReplaceAll(key, "_", "-"),
		"leading separator":     "_" + key,
		"jwt shaped":            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc",
		"secret moved to front": secret + "_" + prefix,
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := auth.KeyPrefix(in)
			require.ErrorIs(t, err, auth.ErrMalformedKey)
			assert.Empty(t, got)
		})
	}
}

// invitationFormat is the key shape with the "mfi" scheme.
var invitationFormat = regexp.MustCompile(`^mfi_[a-z2-7]{8}_[a-z2-7]{32}$`)

func TestInvitationToken(t *testing.T) {
	t.Parallel()
	token, prefix, hash := auth.NewInvitationToken()
	assert.Regexp(t, invitationFormat, token)
	got, err := auth.InvitationPrefix(token)
	require.NoError(t, err)
	assert.Equal(t, prefix, got)
	assert.True(t, auth.KeyMatches(token, hash))

	// Keys and invitation tokens are never taken for one another.
	key, _, _ := auth.NewKey()
	_, err = auth.InvitationPrefix(key)
	require.ErrorIs(t, err, auth.ErrMalformedInvitation)
	_, err = auth.KeyPrefix(token)
	require.ErrorIs(t, err, auth.ErrMalformedKey)
	for _, bad := range []string{"", "mfi_", prefix, token + "a", "MFI" + token[3:], "Bearer " + token} {
		_, err := auth.InvitationPrefix(bad)
		require.ErrorIs(t, err, auth.ErrMalformedInvitation, "%q", bad)
	}
}
