package contentkey

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

var secret = []byte(strings.Repeat("s", 32))

func TestSealOpen(t *testing.T) {
	t.Parallel()
	s, err := NewSealer(secret)
	require.NoError(t, err)
	k, err := New()
	require.NoError(t, err)
	job := uuid.New()
	sealed, err := s.Seal(job, k.Value)
	require.NoError(t, err)
	require.False(t, bytes.Contains(sealed, k.Value), "the sealed form holds the key")

	got, err := s.Open(job, sealed)
	require.NoError(t, err)
	require.Equal(t, k.Value, got)

	other, err := NewSealer([]byte(strings.Repeat("t", 32)))
	require.NoError(t, err)
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	tests := map[string]struct {
		sealer *Sealer
		job    uuid.UUID
		sealed []byte
	}{
		"another job":    {s, uuid.New(), sealed},
		"another secret": {other, job, sealed},
		"changed":        {s, job, flipped},
		"truncated":      {s, job, sealed[:10]},
		"empty":          {s, job, nil},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := tt.sealer.Open(tt.job, tt.sealed)
			require.ErrorIs(t, err, ErrUnsealable)
		})
	}
}

func TestSealerNeedsALongSecret(t *testing.T) {
	t.Parallel()
	_, err := NewSealer([]byte("short"))
	require.ErrorContains(t, err, "at least 32 bytes")
}

func TestKeysDiffer(t *testing.T) {
	t.Parallel()
	a, err := New()
	require.NoError(t, err)
	b, err := New()
	require.NoError(t, err)
	require.Len(t, a.Value, Size)
	require.NotEqual(t, a.Value, b.Value)
	require.NotEqual(t, a.ID, b.ID)
}

func TestKeyNeverPrintsItsValue(t *testing.T) {
	t.Parallel()
	k, err := New()
	require.NoError(t, err)
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("made", slog.Any("key", k), slog.Any("again", []any{k}))
	for _, text := range []string{fmt.Sprint(k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", []Key{k}), logged.String()} {
		require.NotContains(t, text, hex.EncodeToString(k.Value))
		require.NotContains(t, text, base64.StdEncoding.EncodeToString(k.Value))
		require.NotContains(t, text, fmt.Sprintf("%#v", k.Value))
		require.Contains(t, text, k.ID.String())
	}
}

func TestJWK(t *testing.T) {
	t.Parallel()
	k := Key{ID: uuid.MustParse("0123456789abcdef0123456789abcdef"), Value: bytes.Repeat([]byte{0xfb}, Size)}
	data, err := json.Marshal(k.JWK())
	require.NoError(t, err)
	require.JSONEq(t, `{"kty":"oct","kid":"ASNFZ4mrze8BI0VniavN7w","k":"-_v7-_v7-_v7-_v7-_v7-w"}`, string(data))
}
