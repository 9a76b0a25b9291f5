package loopback

import (
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFreePortBelowEphemeralRange: the port is outside the range outgoing
// connections draw from, free (the caller can bind it), and never one the
// caller skips.
func TestFreePortBelowEphemeralRange(t *testing.T) {
	t.Parallel()
	high := highest()
	if low := ephemeralLow(); low > lowest+1000 {
		assert.Equal(t, low, high, "the range ends where the ephemeral one starts")
	}
	seen := map[int]bool{}
	for range 20 {
		p, err := FreePort(func(p int) bool { return seen[p] })
		require.NoError(t, err)
		assert.False(t, seen[p], "a port the caller skips")
		seen[p] = true
		assert.GreaterOrEqual(t, p, lowest)
		assert.Less(t, p, high, "a port of the ephemeral range")
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		require.NoError(t, err, "the port it picked is taken")
		assert.False(t, Free(p), "a port being listened on is not free")
		require.NoError(t, ln.Close())
	}
}
